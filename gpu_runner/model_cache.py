"""Model files (LoRA, textual inversion, hypernetwork, checkpoint) fetched from the blob store into a local cache.

The cache is content addressed: a blob key ends in the SHA-256 of its bytes, so the local file is named by that
digest and a file found there is the right one. A fetch streams into a temporary file in the same folder, checks
the digest, and renames it into place (atomic: a crash leaves no half file under a real name, and two runners
sharing the folder write the same bytes). The folder is bounded: after a fetch, the least recently used files
(by modification time, which each use refreshes) go until the total fits, never a file held: every fetched file
is held until `release()` (the runner releases after each batch, so that preparing one task of a batch never
evicts the files of another).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from gpu_runner.pipeline import Unsupported
from infra.storage import BlobNotFound, BlobStore, validate_key

DEFAULT_MODEL_CACHE_BYTES = 20 * 2**30
SUFFIX = ".safetensors"  # every model artefact is safetensors (events/models.py ModelArtefactStored)


class ModelFileCache:
    def __init__(self, folder: Path, max_bytes: int, blobs: BlobStore) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self.blobs = blobs
        self._lock = threading.Lock()
        self._held: set[Path] = set()

    def path_of(self, key: str) -> Path:
        return self.folder / (validate_key(key).rsplit("/", 1)[-1].split(".", 1)[0] + SUFFIX)

    def fetch(self, keys: Iterable[str], what: dict[str, str] | None = None) -> dict[str, Path]:
        """The local file of each blob key, fetched when missing. `what` names each key's model for messages.

        Raises Unsupported when a blob is gone or damaged: the user must choose another model."""
        keys = list(dict.fromkeys(keys))
        names = what or {}
        with self._lock:
            paths = {key: self._one(key, names.get(key, "a model")) for key in keys}
            self._held.update(paths.values())
            self._evict(keep=self._held)
        return paths

    def release(self) -> None:
        """The files fetched so far may be evicted again (their work is done)."""
        with self._lock:
            self._held.clear()

    def _one(self, key: str, name: str) -> Path:
        try:
            path = self.path_of(key)
        except ValueError:
            raise Unsupported(f"the file of {name} has an unusable blob key; upload or retrain it") from None
        if path.is_file():
            os.utime(path)  # recently used
            return path
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        handle, temporary = tempfile.mkstemp(prefix=".fetch-", suffix=".part", dir=self.folder)
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in self.blobs.iter_bytes(key):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != path.stem:
                raise Unsupported(f"the stored file of {name} is damaged (its bytes do not match its checksum); "
                                  "upload or retrain it, or leave it out")
            os.replace(temporary, path)
        except BlobNotFound:
            raise Unsupported(f"the file of {name} is no longer stored; upload or retrain it, or leave it out "
                              "of the request") from None
        finally:
            Path(temporary).unlink(missing_ok=True)
        return path

    def _evict(self, keep: set[Path]) -> None:
        files = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            try:
                stat = path.stat()
            except FileNotFoundError:  # another runner sharing the folder evicted it
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if path in keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
