"""A work item (events/work.py) as pipeline requests, and a finished image as stored blobs.

Pure helpers of the runner's loop: what the pipeline is asked (one request per image of the task: seeds `seed`,
`seed+1`, ...), and how a result is kept (the PNG as made, with its `parameters` chunk; a thumbnail and the
descriptor made by infra/media.py exactly as for uploads).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpu_runner.pipeline import GenerationRequest, GenerationResult, Unsupported
from infra.media import THUMBNAIL_CONTENT_TYPE, CheckedImage, image_descriptor, make_thumbnail
from infra.storage import BlobStore


@dataclass(frozen=True)
class Base:
    """The model a capability runs on: a diffusers folder (or a single file with its config folder)."""

    path: Path
    name: str
    config: Path | None = None


def member_key(task_id: int, index: int) -> str:
    return f"{task_id}:{index}"


def task_of(key: str) -> int:
    return int(key.split(":", 1)[0])


def requests_for(item: dict[str, Any], base: Base, source: bytes | None) -> list[GenerationRequest]:
    """One request per image of the task. Raises Unsupported for what this runner cannot serve."""
    data = item["data"]
    if data.get("loras"):
        raise Unsupported("LoRA and textual inversion models are not served by the runners yet; "
                          "send the request without `loras`.")
    img2img = data.get("source_key") is not None
    if img2img and source is None:
        raise Unsupported("the source image is no longer stored; choose another from_image.")
    return [
        GenerationRequest(
            key=member_key(int(item["task_id"]), n), prompt=data["prompt"],
            negative_prompt=data.get("negative_prompt", ""), steps=int(data["num_inference_steps"]),
            guidance_scale=float(data["guidance_scale"]), scheduler=data["scheduler"],
            seed=(int(data["seed"]) + n) % 2**32, width=int(data["width"]), height=int(data["height"]),
            base=base.path, base_name=base.name, base_config=base.config,
            init_image=source if img2img else None,
            strength=float(data["strength"]) if img2img else None,
        )
        for n in range(int(data.get("batch_size", 1)))
    ]


def store_result(blobs: BlobStore, result: GenerationResult) -> dict[str, Any]:
    """Store the PNG and its thumbnail (content-addressed: a rerun stores the same keys) and describe the
    picture as command/run_reports.py `ProducedImage` expects it."""
    checked = CheckedImage(result.width, result.height, "PNG", "image/png", result.png)
    key = blobs.put(result.png, "image/png")
    thumbnail = blobs.put(make_thumbnail(checked), THUMBNAIL_CONTENT_TYPE)
    picture = Picture(blob_key=key, thumbnail_key=thumbnail, content_type="image/png", width=result.width,
                      height=result.height, seed=result.seed, descriptor=image_descriptor(checked))
    return asdict(picture)


@dataclass(frozen=True)
class Picture:
    blob_key: str
    thumbnail_key: str | None
    content_type: str
    width: int
    height: int
    seed: int
    descriptor: list[float] | None
