"""Blobs in an S3 bucket through boto3: AWS, MinIO, SeaweedFS or any other server that speaks S3 (SigV4).

Same keys and semantics as the local store. The object's Content-Type is set at upload so that presigned and
public URLs serve the right type; `stat` still derives the type from the key, as the local store does, so both
adapters answer alike. boto3 clients are thread-safe: one client serves every thread.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infra.storage import (
    CHUNK_SIZE,
    BlobAccessDenied,
    BlobInfo,
    BlobNotFound,
    BlobStoreError,
    blob_key,
    content_type_of,
    normalise_content_type,
    validate_key,
)

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_DENIED = {
    "403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken",
}


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        public_base_url: str | None = None,
        *,
        create_bucket: bool = False,
        url_expires_s: int = 3600,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.url_expires_s = url_expires_s
        config = Config(
            signature_version="s3v4",
            # Servers other than AWS rarely have wildcard DNS for bucket subdomains: address buckets by path.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=32,
        )
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=config,
        )
        self._region = region
        if create_bucket:
            self.ensure_bucket()

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """Turn boto errors into ours: callers tell 'missing' from 'misconfigured' without botocore."""
        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            if code == "NoSuchBucket":
                raise BlobStoreError(f"S3 bucket {self.bucket!r} does not exist at {self._where()}") from exc
            if key is not None and code in _NOT_FOUND:
                raise BlobNotFound(key) from None
            if code in _DENIED:
                raise BlobAccessDenied(
                    f"S3 at {self._where()} refused access to bucket {self.bucket!r} ({code}): "
                    "check the access key, the secret key and the key's permissions"
                ) from exc
            raise BlobStoreError(f"S3 request to {self._where()} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"S3 request to {self._where()} failed: {exc}") from exc

    def _where(self) -> str:
        return self.endpoint_url or f"AWS {self._region}"

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (safe when several processes start at once)."""
        try:
            with self._errors():
                self._client.head_bucket(Bucket=self.bucket)
            return
        except BlobStoreError as exc:
            if _code(exc.__cause__) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self._region != "us-east-1":  # AWS refuses an explicit us-east-1 constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            with self._errors():
                self._client.create_bucket(**kwargs)
        except BlobStoreError as exc:
            # Another process created it between our head and create: that is what we wanted.
            if _code(exc.__cause__) != "BucketAlreadyOwnedByYou":
                raise

    def put(self, data: bytes, content_type: str) -> str:
        digest = hashlib.sha256(data)
        key = blob_key(digest.hexdigest(), content_type)
        if self.exists(key):
            return key
        with self._errors():
            # The server checks the SHA-256 too: a corrupted upload cannot land under a content-addressed key.
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=normalise_content_type(content_type),
                ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
            )
        return key

    def put_file(self, path: Path, content_type: str) -> str:
        """Two passes (hash, then a multipart upload): the file must not change during the call."""
        ctype = normalise_content_type(content_type)
        digest = hashlib.sha256()
        with path.open("rb") as src:
            while chunk := src.read(CHUNK_SIZE):
                digest.update(chunk)
        key = blob_key(digest.hexdigest(), ctype)
        if not self.exists(key):
            with self._errors():
                self._client.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": ctype})
        return key

    def get(self, key: str) -> bytes:
        with self._errors(validate_key(key)):
            reply = self._client.get_object(Bucket=self.bucket, Key=key)
            body = reply["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

    def iter_bytes(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        validate_key(key)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}..{end}")
        if end == start or start >= self.stat(key).size:
            return iter(())  # S3 has no empty range; past the end it answers 416, the local store nothing
        byte_range = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        with self._errors(key):
            body = self._client.get_object(Bucket=self.bucket, Key=key, Range=byte_range)["Body"]
        return _chunks(body)

    def stat(self, key: str) -> BlobInfo:
        with self._errors(validate_key(key)):
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        return BlobInfo(key=key, size=int(head["ContentLength"]), content_type=content_type_of(key))

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except BlobNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        with self._errors(validate_key(key)):
            self._client.delete_object(Bucket=self.bucket, Key=key)  # S3 answers 204 for a missing key too

    def url(self, key: str) -> str:
        validate_key(key)
        if self.public_base_url:
            return f"{self.public_base_url}/{key}"
        with self._errors(key):
            return str(self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.url_expires_s,
            ))

    def keys_before(self, modified_before: float) -> Iterator[str]:
        with self._errors():
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for item in page.get("Contents", []):
                    if item["LastModified"].timestamp() < modified_before:
                        try:
                            yield validate_key(item["Key"])
                        except ValueError:
                            continue  # someone else's object in the bucket: not ours to judge


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()


def _code(exc: BaseException | None) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""
