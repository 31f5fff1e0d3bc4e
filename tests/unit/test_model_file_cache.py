"""The runner's local cache of model files: fetched once, verified against the key's digest, written atomically,
bounded by least recent use (never evicting what the current work needs); a missing or damaged blob is a reason
the user can act on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gpu_runner.model_cache import ModelFileCache
from gpu_runner.pipeline import Unsupported
from infra.storage import blob_key
from infra.storage.local import LocalBlobStore

TYPE = "application/x-safetensors"


def test_a_blob_is_fetched_once_and_kept_under_its_digest(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    key = blobs.put(b"weights" * 100, TYPE)
    cache = ModelFileCache(tmp_path / "cache", 10**6, blobs)
    path = cache.fetch([key])[key]
    assert path.read_bytes() == b"weights" * 100 and path.name == key.rsplit("/", 1)[1]
    blobs.delete(key)  # the local copy serves from now on
    assert cache.fetch([key]) == {key: path}
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temporary left behind


def test_a_missing_blob_names_the_model_and_what_to_do(tmp_path: Path) -> None:
    cache = ModelFileCache(tmp_path / "cache", 10**6, LocalBlobStore(tmp_path / "blobs"))
    key = blob_key("ab" * 32, TYPE)
    with pytest.raises(Unsupported, match="the file of LoRA model 7 is no longer stored; upload or retrain it"):
        cache.fetch([key], {key: "LoRA model 7"})
    assert not any((tmp_path / "cache").iterdir())


def test_a_damaged_blob_is_refused_and_not_kept(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    key = blobs.put(b"good bytes", TYPE)
    (tmp_path / "blobs" / key).write_bytes(b"bad bytes")
    cache = ModelFileCache(tmp_path / "cache", 10**6, blobs)
    with pytest.raises(Unsupported, match="damaged"):
        cache.fetch([key])
    assert not any((tmp_path / "cache").iterdir())


def test_the_least_recently_used_files_go_first_and_the_needed_ones_stay(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    keys = [blobs.put(bytes([n]) * 1000, TYPE) for n in range(4)]
    cache = ModelFileCache(tmp_path / "cache", 2500, blobs)
    first = cache.fetch(keys[:2])
    old = time.time() - 100
    os.utime(first[keys[0]], (old, old - 10))
    os.utime(first[keys[1]], (old, old))
    cache.release()
    cache.fetch([keys[0]])  # used again: now the most recent
    cache.release()
    cache.fetch([keys[2]])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        cache.path_of(k).name for k in (keys[0], keys[2]))
    cache.release()
    both = cache.fetch([keys[3], keys[1]])  # over the bound together: the needed ones stay anyway
    assert all(p.is_file() for p in both.values())


def test_files_held_for_a_batch_are_not_evicted_until_released(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    keys = [blobs.put(bytes([n]) * 1000, TYPE) for n in range(3)]
    cache = ModelFileCache(tmp_path / "cache", 1500, blobs)
    first = cache.fetch([keys[0]])[keys[0]]  # one task of a batch
    cache.fetch([keys[1]])  # another task of the same batch: over the bound, but the first is held
    assert first.is_file()
    cache.release()
    cache.fetch([keys[2]])
    assert not first.is_file()
