"""Blob storage: one narrow interface, `BlobStore`, with its adapters beside it (`local`, `s3`).

Blobs are content-addressed: the key is the SHA-256 of the bytes plus the content type's extension,
`ab/cd/abcd...ef.png`. A second put of the same bytes is a no-op, a key never changes meaning, and a key can
be checked against a strict pattern before it reaches a file system path or an S3 request.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Explicit on purpose: the extension in the key is the only place the content type is kept by the local
# adapter, so each type must map to exactly one extension and back. An unknown type is refused, not guessed.
CONTENT_TYPE_EXTENSIONS: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "application/json": "json",
    "text/plain": "txt",
    "application/zip": "zip",
    "application/x-safetensors": "safetensors",
    "application/octet-stream": "bin",
}
_EXTENSION_CONTENT_TYPES = {ext: ctype for ctype, ext in CONTENT_TYPE_EXTENSIONS.items()}

_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]+")

CHUNK_SIZE = 1024 * 1024


class BlobStoreError(Exception):
    """The blob store could not do what was asked (base of the errors below)."""


class BlobNotFound(BlobStoreError, LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no blob with key {key!r}")
        self.key = key


class BlobAccessDenied(BlobStoreError):
    """The storage server refused our credentials or permissions: a configuration error, not a missing
    blob."""


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    content_type: str


class BlobStore(Protocol):
    def put(self, data: bytes, content_type: str) -> str:
        """Store the bytes and return their key; storing the same bytes again changes nothing."""
        ...

    def put_file(self, path: Path, content_type: str) -> str:
        """Like `put`, reading a file in chunks (model weights do not fit comfortably in memory)."""
        ...

    def get(self, key: str) -> bytes:
        """The blob's bytes; raises BlobNotFound."""
        ...

    def iter_bytes(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes from `start` up to `end` (exclusive; None = to the end) in chunks, for streaming and HTTP
        range requests. Raises BlobNotFound before the first chunk."""
        ...

    def stat(self, key: str) -> BlobInfo:
        """Size and content type; raises BlobNotFound."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing blob is not an error."""
        ...

    def url(self, key: str) -> str:
        """Where a client can GET the blob (an API path, a public URL or a presigned URL)."""
        ...

    def keys_before(self, modified_before: float) -> Iterator[str]:
        """Every stored key last written before `modified_before` (epoch seconds), in no particular order;
        for the sweep that finds blobs no object uses (projectors/blob_reaper.py)."""
        ...


def normalise_content_type(content_type: str) -> str:
    """`Image/PNG; charset=x` -> `image/png`; a type outside CONTENT_TYPE_EXTENSIONS is a ValueError."""
    bare = content_type.split(";", 1)[0].strip().lower()
    if bare not in CONTENT_TYPE_EXTENSIONS:
        known = ", ".join(sorted(CONTENT_TYPE_EXTENSIONS))
        raise ValueError(f"content type {content_type!r} cannot be stored; use one of: {known}")
    return bare


def blob_key(digest: str, content_type: str) -> str:
    """The key for a SHA-256 hex digest: fanned out over two folder levels so no folder grows huge."""
    ext = CONTENT_TYPE_EXTENSIONS[normalise_content_type(content_type)]
    return f"{digest[:2]}/{digest[2:4]}/{digest}.{ext}"


def key_for_bytes(data: bytes, content_type: str) -> str:
    return blob_key(hashlib.sha256(data).hexdigest(), content_type)


def validate_key(key: str) -> str:
    """Return the key if it is one that `put` could have made; raise ValueError otherwise.

    Keys come from URLs, so the path-escape cases get their own message before the format check."""
    if not key:
        raise ValueError("blob key is empty")
    if key.startswith("/") or key.startswith("\\") or re.match(r"[A-Za-z]:", key):
        raise ValueError(f"blob key {key!r} is an absolute path; keys are relative like 'ab/cd/abcd….png'")
    if ".." in key.replace("\\", "/").split("/"):
        raise ValueError(f"blob key {key!r} contains '..'")
    if not _KEY.fullmatch(key) or key[:2] != key[6:8] or key[3:5] != key[8:10]:
        raise ValueError(f"blob key {key!r} is not of the form 'ab/cd/<sha256 hex>.<ext>'")
    if key.rsplit(".", 1)[1] not in _EXTENSION_CONTENT_TYPES:
        raise ValueError(f"blob key {key!r} has an unknown extension")
    return key


def content_type_of(key: str) -> str:
    return _EXTENSION_CONTENT_TYPES[validate_key(key).rsplit(".", 1)[1]]


__all__ = [
    "CONTENT_TYPE_EXTENSIONS",
    "BlobAccessDenied",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobStoreError",
    "blob_key",
    "content_type_of",
    "key_for_bytes",
    "normalise_content_type",
    "validate_key",
]
