"""The blob store contract, run over every adapter (fixture `blob_store`: local folder, real S3 server),
then what only one adapter promises (API path URLs, credentials, presigned URLs) and the env factory."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from infra.storage import BlobAccessDenied, BlobNotFound, BlobStore, BlobStoreError, key_for_bytes
from infra.storage.factory import StorageSettingsError, blob_store_from_env
from infra.storage.local import LocalBlobStore
from infra.storage.s3 import S3BlobStore
from tests.seaweed import SeaweedS3Server

PNG_ISH = b"\x89PNG\r\n\x1a\n not really a png, the store does not look inside"
MISSING = key_for_bytes(b"never stored", "image/png")

INVALID_KEYS = [
    "",
    "../../etc/passwd",
    "ab/cd/../../../etc/passwd",
    "/etc/passwd",
    "/" + MISSING,
    "C:/windows/x.png",
    "ab\\cd\\" + MISSING.rsplit("/", 1)[1],
    "ab/cd/not-a-digest.png",
    MISSING.replace(".png", ".exe"),
    "00/00/" + MISSING.rsplit("/", 1)[1],  # fan-out folders that do not match the digest
    MISSING + "/more",
]


class TestBlobStoreContract:
    def test_put_then_get_returns_the_same_bytes(self, blob_store: BlobStore) -> None:
        key = blob_store.put(PNG_ISH, "image/png")
        assert blob_store.get(key) == PNG_ISH

    def test_key_is_the_sha256_fanned_out_with_the_type_extension(self, blob_store: BlobStore) -> None:
        digest = hashlib.sha256(PNG_ISH).hexdigest()
        assert blob_store.put(PNG_ISH, "image/png") == f"{digest[:2]}/{digest[2:4]}/{digest}.png"
        assert blob_store.put(PNG_ISH, "image/jpeg") == f"{digest[:2]}/{digest[2:4]}/{digest}.jpg"

    def test_different_bytes_get_different_keys(self, blob_store: BlobStore) -> None:
        assert blob_store.put(b"one", "text/plain") != blob_store.put(b"two", "text/plain")

    def test_second_put_of_the_same_bytes_is_a_no_op(self, blob_store: BlobStore) -> None:
        first = blob_store.put(PNG_ISH, "image/png")
        second = blob_store.put(PNG_ISH, "image/png")
        assert first == second
        assert blob_store.get(second) == PNG_ISH
        assert blob_store.stat(second).size == len(PNG_ISH)

    def test_content_type_parameters_and_case_do_not_change_the_key(self, blob_store: BlobStore) -> None:
        assert blob_store.put(b"hi", "Text/Plain; charset=utf-8") == blob_store.put(b"hi", "text/plain")

    def test_unknown_content_type_is_refused(self, blob_store: BlobStore) -> None:
        with pytest.raises(ValueError, match="cannot be stored"):
            blob_store.put(b"x", "application/x-msdownload")

    def test_stat_gives_size_and_content_type(self, blob_store: BlobStore) -> None:
        key = blob_store.put(b"{}", "application/json")
        info = blob_store.stat(key)
        assert (info.key, info.size, info.content_type) == (key, 2, "application/json")

    def test_exists_follows_put_and_delete(self, blob_store: BlobStore) -> None:
        key = key_for_bytes(PNG_ISH, "image/png")
        assert not blob_store.exists(key)
        blob_store.put(PNG_ISH, "image/png")
        assert blob_store.exists(key)
        blob_store.delete(key)
        assert not blob_store.exists(key)
        with pytest.raises(BlobNotFound):
            blob_store.get(key)

    def test_delete_is_idempotent(self, blob_store: BlobStore) -> None:
        key = blob_store.put(PNG_ISH, "image/png")
        blob_store.delete(key)
        blob_store.delete(key)
        blob_store.delete(MISSING)
        assert not blob_store.exists(key)

    def test_put_after_delete_stores_the_blob_again(self, blob_store: BlobStore) -> None:
        key = blob_store.put(PNG_ISH, "image/png")
        blob_store.delete(key)
        assert blob_store.put(PNG_ISH, "image/png") == key
        assert blob_store.get(key) == PNG_ISH

    def test_missing_key_raises_blob_not_found(self, blob_store: BlobStore) -> None:
        for read in (blob_store.get, blob_store.stat, blob_store.iter_bytes):
            with pytest.raises(BlobNotFound) as caught:
                read(MISSING)
            assert caught.value.key == MISSING
        assert not blob_store.exists(MISSING)

    @pytest.mark.parametrize("key", INVALID_KEYS)
    def test_invalid_keys_are_refused_before_any_access(self, blob_store: BlobStore, key: str) -> None:
        for call in (blob_store.get, blob_store.exists, blob_store.delete, blob_store.url, blob_store.stat,
                     blob_store.iter_bytes):
            with pytest.raises(ValueError, match="blob key"):
                call(key)

    def test_url_names_the_key(self, blob_store: BlobStore) -> None:
        key = blob_store.put(PNG_ISH, "image/png")
        assert key in blob_store.url(key)

    def test_large_blob_round_trips(self, blob_store: BlobStore) -> None:
        data = os.urandom(9 * 1024 * 1024 + 7)  # over SeaweedFS's 4 MiB chunk and our 1 MiB read chunk
        key = blob_store.put(data, "application/octet-stream")
        assert blob_store.get(key) == data
        assert blob_store.stat(key).size == len(data)
        assert b"".join(blob_store.iter_bytes(key)) == data

    def test_iter_bytes_serves_byte_ranges(self, blob_store: BlobStore) -> None:
        data = bytes(range(256)) * 20
        key = blob_store.put(data, "application/octet-stream")
        assert b"".join(blob_store.iter_bytes(key, 100, 300)) == data[100:300]
        assert b"".join(blob_store.iter_bytes(key, 5000)) == data[5000:]
        assert b"".join(blob_store.iter_bytes(key, 5000, 99999)) == data[5000:]
        assert b"".join(blob_store.iter_bytes(key, 7, 7)) == b""
        assert b"".join(blob_store.iter_bytes(key, len(data) + 10)) == b""

    def test_put_file_stores_the_same_blob_as_put(self, blob_store: BlobStore, tmp_path: Path) -> None:
        data = os.urandom(3 * 1024 * 1024 + 1)
        path = tmp_path / "weights.safetensors"
        path.write_bytes(data)
        key = blob_store.put_file(path, "application/x-safetensors")
        assert key == key_for_bytes(data, "application/x-safetensors")
        assert key.endswith(".safetensors")
        assert blob_store.get(key) == data
        assert blob_store.put_file(path, "application/x-safetensors") == key

    def test_concurrent_puts_of_the_same_bytes_store_one_intact_blob(self, blob_store: BlobStore) -> None:
        data = os.urandom(512 * 1024)
        start = threading.Barrier(12)

        def put() -> str:
            start.wait()
            return blob_store.put(data, "image/webp")

        with ThreadPoolExecutor(12) as pool:
            keys = set(pool.map(lambda _: put(), range(12)))
        assert keys == {key_for_bytes(data, "image/webp")}
        assert blob_store.get(keys.pop()) == data

    def test_keys_before_lists_the_keys_written_before_a_time(self, blob_store: BlobStore) -> None:
        key = blob_store.put(os.urandom(64), "image/png")
        assert key in set(blob_store.keys_before(time.time() + 60))
        assert key not in set(blob_store.keys_before(time.time() - 3600))
        blob_store.delete(key)
        assert key not in set(blob_store.keys_before(time.time() + 60))


# Local adapter only.

def test_local_url_is_the_api_path_that_serves_the_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    key = store.put(PNG_ISH, "image/png")
    assert store.url(key) == f"/api/blobs/{key}"
    assert LocalBlobStore(tmp_path, url_prefix="/files/").url(key) == f"/files/{key}"


def test_local_store_keeps_no_temporary_files_and_no_sidecars(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    key = store.put(PNG_ISH, "image/png")
    store.put(PNG_ISH, "image/png")
    store.put_file(tmp_path / key, "text/plain")
    assert list((tmp_path / ".tmp").iterdir()) == []
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted([key, key_for_bytes(PNG_ISH, "text/plain")])


# S3 adapter only: against the real server the credentials and signatures are checked.

def _store_with(server: SeaweedS3Server, bucket: str, access_key: str, secret_key: str) -> S3BlobStore:
    return S3BlobStore(bucket, server.endpoint_url, access_key, secret_key)


def test_s3_wrong_secret_key_is_refused(seaweed_server: SeaweedS3Server, s3_blob_store: S3BlobStore) -> None:
    key = s3_blob_store.put(PNG_ISH, "image/png")
    intruder = _store_with(seaweed_server, s3_blob_store.bucket, seaweed_server.access_key, "wrong-secret")
    with pytest.raises(BlobAccessDenied, match="refused"):
        intruder.get(key)
    with pytest.raises(BlobAccessDenied):
        intruder.put(b"planted", "image/png")
    with pytest.raises(BlobAccessDenied):
        intruder.exists(key)
    assert not s3_blob_store.exists(key_for_bytes(b"planted", "image/png"))


def test_s3_unknown_access_key_is_refused(
    seaweed_server: SeaweedS3Server, s3_blob_store: S3BlobStore
) -> None:
    key = s3_blob_store.put(PNG_ISH, "image/png")
    intruder = _store_with(seaweed_server, s3_blob_store.bucket, "AKNOBODY", seaweed_server.secret_key)
    with pytest.raises(BlobAccessDenied):
        intruder.get(key)


def test_s3_presigned_url_serves_the_bytes_with_their_type(s3_blob_store: S3BlobStore) -> None:
    data = os.urandom(70_000)
    key = s3_blob_store.put(data, "image/webp")
    reply = httpx.get(s3_blob_store.url(key))
    assert reply.status_code == 200
    assert reply.content == data
    assert reply.headers["content-type"] == "image/webp"


def test_s3_object_is_not_served_without_a_signature(s3_blob_store: S3BlobStore) -> None:
    key = s3_blob_store.put(PNG_ISH, "image/png")
    signed = s3_blob_store.url(key)
    assert httpx.get(signed.split("?", 1)[0]).status_code == 403
    tampered = signed.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.get(tampered).status_code == 403


def test_s3_public_base_url_replaces_presigning(seaweed_server: SeaweedS3Server) -> None:
    store = S3BlobStore("public", seaweed_server.endpoint_url, seaweed_server.access_key,
                        seaweed_server.secret_key, public_base_url="https://cdn.example.test/img/")
    key = key_for_bytes(PNG_ISH, "image/png")
    assert store.url(key) == f"https://cdn.example.test/img/{key}"


def test_s3_missing_bucket_is_a_clear_error(seaweed_server: SeaweedS3Server) -> None:
    store = _store_with(seaweed_server, "never-created", seaweed_server.access_key, seaweed_server.secret_key)
    with pytest.raises(BlobStoreError, match="never-created"):
        store.get(MISSING)


# The factory.

def test_factory_defaults_to_local_blobs_under_the_data_dir(tmp_path: Path) -> None:
    store = blob_store_from_env(tmp_path, env={})
    assert isinstance(store, LocalBlobStore)
    assert store.root == (tmp_path / "blobs").resolve()


def test_factory_names_every_missing_s3_setting(tmp_path: Path) -> None:
    env = {"AIDRAW_STORAGE": "s3", "AIDRAW_S3_BUCKET": "b"}
    with pytest.raises(StorageSettingsError, match="AIDRAW_S3_ACCESS_KEY, AIDRAW_S3_SECRET_KEY"):
        blob_store_from_env(tmp_path, env=env)


_S3_MINIMAL = {"AIDRAW_STORAGE": "s3", "AIDRAW_S3_BUCKET": "b", "AIDRAW_S3_ACCESS_KEY": "a",
               "AIDRAW_S3_SECRET_KEY": "s"}


@pytest.mark.parametrize(("env", "message"), [
    ({"AIDRAW_STORAGE": "ftp"}, "use local or s3"),
    ({**_S3_MINIMAL, "AIDRAW_S3_ENDPOINT": "localhost:8333"}, "AIDRAW_S3_ENDPOINT"),
    ({**_S3_MINIMAL, "AIDRAW_S3_PUBLIC_URL": "cdn.example.test"}, "AIDRAW_S3_PUBLIC_URL"),
    ({**_S3_MINIMAL, "AIDRAW_S3_CREATE_BUCKET": "maybe"}, "AIDRAW_S3_CREATE_BUCKET"),
])
def test_factory_refuses_bad_settings(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(StorageSettingsError, match=message):
        blob_store_from_env(tmp_path, env=env)


def test_factory_builds_a_working_s3_store(tmp_path: Path, seaweed_server: SeaweedS3Server) -> None:
    env = {
        "AIDRAW_STORAGE": "S3",
        "AIDRAW_S3_ENDPOINT": seaweed_server.endpoint_url,
        "AIDRAW_S3_BUCKET": f"factory-{os.getpid()}",
        "AIDRAW_S3_ACCESS_KEY": seaweed_server.access_key,
        "AIDRAW_S3_SECRET_KEY": seaweed_server.secret_key,
        "AIDRAW_S3_CREATE_BUCKET": "true",
    }
    store = blob_store_from_env(tmp_path, env=env)
    assert isinstance(store, S3BlobStore)
    assert store.get(store.put(PNG_ISH, "image/png")) == PNG_ISH
