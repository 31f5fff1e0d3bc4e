"""A dataset's files made into training images: decoded (bounded), resized, centre-cropped, captioned, repeated.

Each source is the bytes of one image with its caption (the image's prompt, or a `.txt` companion's text) and a
repeat count. Decoding goes through infra/media's bounded decoder (byte and pixel limits, the whole file read, so a
damaged image fails here). A failing item is skipped with its reason; fewer usable items than `min_items` fail the
whole set before any GPU time is spent, naming what was skipped.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from PIL import Image

from gpu_runner.training.sd import TrainingFailed, TrainingImage
from infra.media import MediaRejected, inspect_upload
from infra.training_params import MIN_ITEMS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class Source:
    name: str  # for reasons: an image id, a URL, a file name
    data: bytes
    caption: str | None = None
    repeats: int = 1


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 32 * 2**20
    max_pixels: int = 40_000_000
    min_items: int = MIN_ITEMS
    max_repeats: int = 100


def caption_for(caption: str | None, trigger_words: Sequence[str]) -> str:
    """The caption with the trigger words first where it lacks them; the trigger words alone where it is empty."""
    text = (caption or "").strip()
    missing = [word for word in trigger_words if word not in text]
    return ", ".join([*missing, text] if text else missing)


def with_companions(files: Mapping[str, bytes], repeats: int = 1) -> list[Source]:
    """Images of a folder or archive, each captioned by the `.txt` beside it (same stem), if there is one."""
    sources = []
    for name in sorted(files):
        path = PurePosixPath(name)
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        text = files.get(str(path.with_suffix(".txt")))
        caption = text.decode("utf-8", errors="replace").strip() if text is not None else None
        sources.append(Source(name, files[name], caption, repeats))
    return sources


def square(image: Image.Image, resolution: int) -> Image.Image:
    """Shorter side scaled to `resolution` (Lanczos), then the centre square cut out."""
    image = image.convert("RGB")
    scale = resolution / min(image.size)
    width, height = max(resolution, round(image.width * scale)), max(resolution, round(image.height * scale))
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    left, top = (width - resolution) // 2, (height - resolution) // 2
    return image.crop((left, top, left + resolution, top + resolution))


def materialise(sources: Sequence[Source], *, resolution: int, trigger_words: Sequence[str],
                limits: Limits = Limits()) -> tuple[list[TrainingImage], list[str]]:
    """The usable items and the reasons for each skipped one; TrainingFailed when too few are usable."""
    items: list[TrainingImage] = []
    skipped: list[str] = []
    for source in sources:
        if not 1 <= source.repeats <= limits.max_repeats:
            skipped.append(f"{source.name}: repeat count {source.repeats} is not within 1..{limits.max_repeats}")
            continue
        try:
            checked = inspect_upload(source.data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels)
        except MediaRejected as rejected:
            skipped.append(f"{source.name}: {rejected.reason}")
            continue
        with Image.open(io.BytesIO(checked.clean_bytes)) as image:
            picture = square(image, resolution)
        items.append(TrainingImage(picture, caption_for(source.caption, trigger_words), source.repeats))
    if len(items) < limits.min_items:
        reasons = "; ".join(skipped) or "no images given"
        raise TrainingFailed(f"only {len(items)} usable images, at least {limits.min_items} needed ({reasons})")
    return items, skipped
