"""A training task's dataset on the runner: its files gathered, then made into training images.

The work item's `dataset` (docs/training.md, "the contract"): `images` (the command side resolved and checked
them; each has its `blob_key` and `caption`) are read from the blob store; `oss` URLs are fetched through
infra/url_fetch.py (the SSRF rule on every hop, size, type and time limits), a `.txt` URL captioning the image URL
of the same path stem (kohya's caption companions); `repeats` applies to every item. Then
gpu_runner/training/dataset.py decodes, resizes and crops them. Any item that cannot be used fails the task and is
named (the owner fixes the dataset, nothing is silently dropped); too few items fail before any training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gpu_runner.training import TrainingFailed, TrainingImage
from gpu_runner.training.dataset import Limits, Source, materialise
from infra.storage import BlobNotFound, BlobStore
from infra.url_fetch import FetchLimits, FetchRefused, fetch, shown
from infra.urls import AllowList

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
IMAGE_LIMITS = FetchLimits(content_types=IMAGE_TYPES, max_bytes=Limits().max_bytes)
CAPTION_LIMITS = FetchLimits(content_types=("text/plain",), max_bytes=64 * 1024)


class DatasetProblem(Exception):
    """An item cannot be had; `final`: trying again cannot help (a timeout or a 5xx may pass)."""

    def __init__(self, reason: str, *, final: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


def trigger_words(text: str | None) -> tuple[str, ...]:
    """The model's trigger words, comma-separated as the API takes them."""
    return tuple(word.strip() for word in (text or "").split(",") if word.strip())


def _stem(url: str) -> str:
    parts = urlsplit(url)
    path = PurePosixPath(parts.path)
    return urlunsplit((parts.scheme, parts.netloc, str(path.with_suffix("")) if path.suffix else parts.path,
                       parts.query, ""))


def _fetch(url: str, limits: FetchLimits, allowed: AllowList) -> bytes:
    try:
        return fetch(url, limits, allowed=allowed).data
    except FetchRefused as refused:
        raise DatasetProblem(f"dataset item {refused.reason}", final=refused.final) from None


def gather(dataset: dict[str, Any], blobs: BlobStore, allowed: AllowList) -> list[Source]:
    """Every item's bytes and caption. DatasetProblem names the first item that cannot be had."""
    repeats = int(dataset.get("repeats", 1))
    sources = []
    for image in dataset.get("images", []):
        try:
            data = blobs.get(str(image["blob_key"]))
        except (BlobNotFound, ValueError):
            raise DatasetProblem(f"dataset image {image.get('image_id')}: its file is no longer stored") from None
        sources.append(Source(f"image {image.get('image_id')}", data, image.get("caption"), repeats))
    urls: Sequence[str] = dataset.get("oss", [])
    captions = {_stem(u): u for u in urls if PurePosixPath(urlsplit(u).path).suffix.lower() == ".txt"}
    for url in urls:
        if url in captions.values():
            continue
        caption = None
        if companion := captions.get(_stem(url)):
            caption = _fetch(companion, CAPTION_LIMITS, allowed).decode("utf-8", errors="replace").strip()
        sources.append(Source(shown(url), _fetch(url, IMAGE_LIMITS, allowed), caption, repeats))
    return sources


def training_images(dataset: dict[str, Any], blobs: BlobStore, allowed: AllowList, *, resolution: int,
                    words: Sequence[str]) -> list[TrainingImage]:
    """The dataset decoded, resized and cropped to `resolution`; TrainingFailed names every unusable item."""
    items, skipped = materialise(gather(dataset, blobs, allowed), resolution=resolution, trigger_words=words)
    if skipped:
        raise TrainingFailed(f"these dataset items cannot be used: {'; '.join(skipped)}")
    return items
