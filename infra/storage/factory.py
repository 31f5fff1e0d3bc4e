"""Choose and build the blob store from its settings: the environment variables below, which `Settings` reads
(`Settings.storage`, infra/settings.py) and this module checks when the store is built.

AIDRAW_STORAGE           `local` (default): files under <data dir>/blobs, served by the API at /api/blobs/
                         `s3`: an S3 bucket, configured by the variables below
AIDRAW_S3_ENDPOINT       URL of the S3 server; empty for AWS itself
AIDRAW_S3_BUCKET         bucket name (required for s3)
AIDRAW_S3_ACCESS_KEY     access key id (required for s3)
AIDRAW_S3_SECRET_KEY     secret access key (required for s3)
AIDRAW_S3_REGION         region, default us-east-1
AIDRAW_S3_PUBLIC_URL     base URL under which the bucket's objects are public; empty: hand out presigned URLs
AIDRAW_S3_CREATE_BUCKET  true: create the bucket at start if it is missing (default false)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from infra.storage import BlobStore
from infra.storage.local import LocalBlobStore


class StorageSettingsError(ValueError):
    """The storage environment variables are missing or wrong; the message names them."""


def uses_local_blobs(env: Mapping[str, str]) -> bool:
    """Whether these settings keep blobs in the data folder."""
    return env.get("AIDRAW_STORAGE", "").strip().lower() in {"", "local"}


def blob_store_from_env(data_dir: Path, env: Mapping[str, str]) -> BlobStore:
    """The blob store `env` (the storage variables, `Settings.storage`) names."""
    if uses_local_blobs(env):
        return LocalBlobStore(data_dir / "blobs")
    if env["AIDRAW_STORAGE"].strip().lower() == "s3":
        return _s3_from_env(env)
    raise StorageSettingsError(
        f"AIDRAW_STORAGE={env['AIDRAW_STORAGE']!r} is not a storage kind; use local or s3."
    )


def _s3_from_env(env: Mapping[str, str]) -> BlobStore:
    def get(name: str) -> str:
        return env.get(name, "").strip()

    required = ("AIDRAW_S3_BUCKET", "AIDRAW_S3_ACCESS_KEY", "AIDRAW_S3_SECRET_KEY")
    missing = [name for name in required if not get(name)]
    if missing:
        raise StorageSettingsError(f"AIDRAW_STORAGE=s3 needs {', '.join(missing)} to be set.")
    for name in ("AIDRAW_S3_ENDPOINT", "AIDRAW_S3_PUBLIC_URL"):
        if get(name) and not get(name).startswith(("http://", "https://")):
            raise StorageSettingsError(f"{name}={get(name)!r} is not an http:// or https:// URL.")
    create = get("AIDRAW_S3_CREATE_BUCKET").lower() or "false"
    if create not in {"true", "false", "1", "0", "yes", "no"}:
        raise StorageSettingsError(f"AIDRAW_S3_CREATE_BUCKET={create!r} is not a boolean; use true or false.")

    from infra.storage.s3 import S3BlobStore  # boto3 loads slowly: only when S3 is chosen

    return S3BlobStore(
        bucket=get("AIDRAW_S3_BUCKET"),
        endpoint_url=get("AIDRAW_S3_ENDPOINT") or None,
        access_key=get("AIDRAW_S3_ACCESS_KEY"),
        secret_key=get("AIDRAW_S3_SECRET_KEY"),
        region=get("AIDRAW_S3_REGION") or "us-east-1",
        public_base_url=get("AIDRAW_S3_PUBLIC_URL") or None,
        create_bucket=create in {"true", "1", "yes"},
    )
