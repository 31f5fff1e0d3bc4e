"""Blobs as files under one folder, served by the API under `url_prefix` (the embedded default).

Writes go to a temporary file under `<root>/.tmp`, are fsynced and then renamed into place, so a reader (or a
crash) never sees half a blob; two writers of the same bytes both rename identical files onto one name, which
is harmless. The content type is not stored beside the file: the key's extension maps back to exactly one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from infra.storage import (
    CHUNK_SIZE,
    BlobInfo,
    BlobNotFound,
    blob_key,
    content_type_of,
    key_for_bytes,
    normalise_content_type,
    validate_key,
)


class LocalBlobStore:
    def __init__(self, root: Path, url_prefix: str = "/api/blobs") -> None:
        self.root = root.resolve()
        self.url_prefix = url_prefix.rstrip("/")
        # Temporary files live on the same file system as the blobs (rename must not cross devices) and in one
        # folder of their own, so leftovers of a crash are easy to find and never look like blobs.
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put(self, data: bytes, content_type: str) -> str:
        key = key_for_bytes(data, content_type)
        if not self._path(key).exists():
            self._move_into_place(self._write_temp(lambda out: out.write(data)), key)
        return key

    def put_file(self, path: Path, content_type: str) -> str:
        normalise_content_type(content_type)  # refuse a bad type before reading a large file
        digest = hashlib.sha256()

        def copy(out: BinaryIO) -> None:
            # Hash what is written, in the same pass, so the key always matches the stored bytes.
            with path.open("rb") as src:
                while chunk := src.read(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)

        tmp = self._write_temp(copy)
        key = blob_key(digest.hexdigest(), content_type)
        self._move_into_place(tmp, key)
        return key

    def _write_temp(self, write: Callable[[BinaryIO], object]) -> Path:
        fd, name = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def _move_into_place(self, tmp: Path, key: str) -> None:
        target = self._path(key)
        try:
            if target.exists():
                return  # same key, same bytes: keep the blob that is there
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.chmod(0o644)  # mkstemp makes 0600; blobs are not secret from the store's other local readers
            os.replace(tmp, target)
            # The rename is durable only once the folder holding the new entry is on disk too.
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def iter_bytes(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            src = self._path(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        # Opened eagerly (not inside the generator) so a missing blob raises here, before a response starts.
        return _read_range(src, start, end)

    def stat(self, key: str) -> BlobInfo:
        try:
            size = self._path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return BlobInfo(key=key, size=size, content_type=content_type_of(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        # The fan-out folders stay: removing an empty one could race with a put renaming a file into it.
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return f"{self.url_prefix}/{validate_key(key)}"

    def keys_before(self, modified_before: float) -> Iterator[str]:
        for path in self.root.glob("??/??/*"):
            key = path.relative_to(self.root).as_posix()
            try:
                validate_key(key)
                if path.is_file() and path.stat().st_mtime < modified_before:
                    yield key
            except (ValueError, FileNotFoundError):
                continue  # not a blob (or deleted meanwhile)


def _read_range(src: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with src:
        src.seek(start)
        left = None if end is None else max(0, end - start)
        while left is None or left > 0:
            chunk = src.read(CHUNK_SIZE if left is None else min(CHUNK_SIZE, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
