"""A work item (events/work.py) as pipeline requests, and a finished image as stored blobs.

Pure helpers of the runner's loop: which model files a task needs locally (`model_files_of`: its adapters and its
checkpoint, fetched by gpu_runner/model_cache.py), what the pipeline is asked (one request per image of the task:
seeds `seed`, `seed+1`, ...; adapters and a user's checkpoint as local files), and how a result is kept (the PNG
as made, with its `parameters` chunk; a thumbnail and the descriptor made by infra/media.py as for uploads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpu_runner.pipeline import AdapterRef, GenerationRequest, GenerationResult, Unsupported
from infra.media import THUMBNAIL_CONTENT_TYPE, CheckedImage, image_descriptor, make_thumbnail
from infra.storage import BlobStore


@dataclass(frozen=True)
class Base:
    """The model a capability runs on: a diffusers folder (or a single file with its config folder)."""

    path: Path
    name: str
    config: Path | None = None


_KIND_NAMES = {"lora": "LoRA", "ti": "textual inversion", "hyper": "hypernetwork"}


def member_key(task_id: int, index: int) -> str:
    return f"{task_id}:{index}"


def task_of(key: str) -> int:
    return int(key.split(":", 1)[0])


def model_files_of(item: dict[str, Any]) -> dict[str, str]:
    """The blob keys a task's recipe needs on local disk (its adapters, its checkpoint), each with a name for
    messages: `{blob key: "LoRA model 12"}`."""
    data = item["data"]
    files = {a["blob_key"]: f"{_KIND_NAMES.get(a['type'], a['type'])} model {a['model_id']}"
             for a in data.get("adapters", [])}
    if data.get("checkpoint_key"):
        files[data["checkpoint_key"]] = f"checkpoint model {data.get('model_id')}"
    return files


def _base_of(data: dict[str, Any], base: Base, files: Mapping[str, Path]) -> Base:
    """The capability's base, or a user's checkpoint file configured by it (its config folder, its tokenizer)."""
    key = data.get("checkpoint_key")
    if not key:
        return base
    config = base.config if base.config is not None else base.path
    return Base(files[key], f"model-{data.get('model_id')}", config)


def _adapters(data: dict[str, Any], files: Mapping[str, Path]) -> tuple[AdapterRef, ...]:
    return tuple(
        AdapterRef(path=files[a["blob_key"]], kind=a["type"], weight=float(a["weight"]), token=a.get("token"),
                   name=a.get("name"))
        for a in data.get("adapters", [])
    )


def requests_for(item: dict[str, Any], base: Base, source: bytes | None,
                 files: Mapping[str, Path] | None = None) -> list[GenerationRequest]:
    """One request per image of the task. `files` maps the blob keys of `model_files_of(item)` to local files.
    Raises Unsupported for what this runner cannot serve."""
    data = item["data"]
    files = files or {}
    if data.get("loras") and not data.get("adapters"):  # asked before adapters were resolved into the recipe
        raise Unsupported("this task names LoRA models in a form the runners no longer read; ask again.")
    missing = set(model_files_of(item)) - set(files)
    if missing:
        raise Unsupported(f"the runner has no local copy of {len(missing)} model file(s) of this task")
    img2img = data.get("source_key") is not None
    if img2img and source is None:
        raise Unsupported("the source image is no longer stored; choose another from_image.")
    chosen = _base_of(data, base, files)
    adapters = _adapters(data, files)
    return [
        GenerationRequest(
            key=member_key(int(item["task_id"]), n), prompt=data["prompt"],
            negative_prompt=data.get("negative_prompt", ""), steps=int(data["num_inference_steps"]),
            guidance_scale=float(data["guidance_scale"]), scheduler=data["scheduler"],
            seed=(int(data["seed"]) + n) % 2**32, width=int(data["width"]), height=int(data["height"]),
            base=chosen.path, base_name=chosen.name, base_config=chosen.config, adapters=adapters,
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
