"""A1111-style short model hashes (first 10 hex digits of SHA-256), remembered per file version."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")
_lock = threading.Lock()
_known: dict[tuple[Path, int, int], str] = {}


def _file_digest(path: Path, digest: hashlib._Hash) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def short_hash(path: Path) -> str:
    """A single file hashes as A1111 hashes it; a diffusers folder hashes its weight files (name and bytes, sorted)."""
    path = path.resolve()
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    with _lock:
        if key in _known:
            return _known[key]
    digest = hashlib.sha256()
    if path.is_dir():
        for weights in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES):
            digest.update(str(weights.relative_to(path)).encode() + b"\0")
            _file_digest(weights, digest)
    else:
        _file_digest(path, digest)
    value = digest.hexdigest()[:10]
    with _lock:
        _known[key] = value
    return value
