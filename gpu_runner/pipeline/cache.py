"""Base pipelines kept loaded, least recently used first out, within a memory budget.

A base is a diffusers folder, or a single `.safetensors`/`.ckpt` checkpoint with a local diffusers folder for its
configs and tokenizer. Loading is strictly local (`local_files_only`, `HF_HUB_OFFLINE`): diffusers quietly turns
downloading back on for a single file without a local config, so such a request is refused before loading.
A base's size is estimated before loading (tensor shapes from safetensors headers, at the target dtype) so that
room is made first, and measured after.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionPipeline
from safetensors import safe_open

from gpu_runner.pipeline.hashing import short_hash
from gpu_runner.pipeline.requests import Unsupported

_COMPONENTS = ("unet", "vae", "text_encoder")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class RunOptions:
    device: str
    dtype: torch.dtype
    channels_last: bool = False
    compile: bool = False


@dataclass
class LoadedBase:
    path: Path
    pipe: Any  # StableDiffusionPipeline: components, image processor, LoRA and textual-inversion loaders
    size_bytes: int
    model_hash: str
    unet_forward: Any  # the UNet, or its compiled form


def check_base(base: Path, base_config: Path | None) -> None:
    """Refuse a base that cannot be loaded offline, without touching its weights."""
    if base.is_dir():
        if not (base / "model_index.json").is_file():
            raise Unsupported(f"base model folder {base} has no model_index.json (not a diffusers folder)")
        return
    if not base.is_file():
        raise Unsupported(f"base model {base} does not exist on this runner")
    if base.suffix not in SINGLE_FILE_SUFFIXES:
        raise Unsupported(f"base model {base.name}: a single file must be .safetensors or .ckpt")
    if base_config is None or not (base_config / "model_index.json").is_file():
        raise Unsupported(
            f"base model {base.name} is a single file: it needs a local diffusers config folder "
            "(with model_index.json and the tokenizer) configured beside it; nothing is fetched from a hub"
        )


def _weight_files(base: Path) -> Iterable[Path]:
    if base.is_file():
        return [base]
    return [p for part in _COMPONENTS for p in sorted((base / part).glob("*")) if p.suffix in (".safetensors", ".bin")]


def estimate_bytes(base: Path, dtype: torch.dtype) -> int:
    item = torch.empty((), dtype=dtype).element_size()
    total = 0
    for path in _weight_files(base):
        if path.suffix != ".safetensors":
            total += path.stat().st_size
            continue
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shape = handle.get_slice(name).get_shape()
                total += item * int(torch.Size(shape).numel())
    return total


def _measured_bytes(pipe: Any) -> int:
    total = 0
    for name in _COMPONENTS:
        module = getattr(pipe, name)
        for tensor in [*module.parameters(), *module.buffers()]:
            total += tensor.numel() * tensor.element_size()
    return total


def load_base(base: Path, base_config: Path | None, options: RunOptions) -> LoadedBase:
    check_base(base, base_config)
    common: dict[str, Any] = {
        "dtype": options.dtype, "local_files_only": True, "safety_checker": None,
        "requires_safety_checker": False,
    }
    try:
        if base.is_dir():
            pipe = StableDiffusionPipeline.from_pretrained(base, **common)
        else:
            pipe = StableDiffusionPipeline.from_single_file(str(base), config=str(base_config), **common)
    except Unsupported:
        raise
    except Exception as error:  # a broken or foreign file: the user must choose another base
        raise Unsupported(f"base model {base.name} could not be loaded: {error}") from error
    pipe.set_progress_bar_config(disable=True)
    pipe.to(options.device)
    if options.channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    unet_forward = torch.compile(pipe.unet, mode="max-autotune-no-cudagraphs") if options.compile else pipe.unet
    return LoadedBase(base, pipe, _measured_bytes(pipe), short_hash(base), unet_forward)


class BaseCache:
    """LRU of loaded bases whose summed size stays within `budget_bytes` (the base in use always stays)."""

    def __init__(self, options: RunOptions, budget_bytes: int) -> None:
        self._options = options
        self._budget = budget_bytes
        self._bases: OrderedDict[Path, LoadedBase] = OrderedDict()

    @property
    def loaded(self) -> list[Path]:
        return list(self._bases)

    @property
    def used_bytes(self) -> int:
        return sum(b.size_bytes for b in self._bases.values())

    def get(self, base: Path, base_config: Path | None) -> LoadedBase:
        if base in self._bases:
            self._bases.move_to_end(base)
            return self._bases[base]
        check_base(base, base_config)
        needed = estimate_bytes(base, self._options.dtype)
        if needed > self._budget:
            raise Unsupported(
                f"base model {base.name} needs about {needed / 2**30:.1f} GiB, more than this runner's "
                f"model memory budget of {self._budget / 2**30:.1f} GiB"
            )
        self._evict_until(self._budget - needed)
        loaded = load_base(base, base_config, self._options)
        self._bases[base] = loaded
        return loaded

    def _evict_until(self, limit: int) -> None:
        while self._bases and self.used_bytes > limit:
            _, evicted = self._bases.popitem(last=False)
            del evicted
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
