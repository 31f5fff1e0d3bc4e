"""What models cost a generation on the tiny model (64x64, 20 steps, Euler a), each beside a same-run baseline.
Prints figures, asserts nothing.

    .venv/bin/python -m bench.generation_models [--repeats 5] [--steps 20] [--size 64]

- per request: plain, with a LoRA (load, weight, fuse; unfuse, unload, restore the base), with a textual inversion
  (tokenizer copy, embedding rows; restore): runs alternate so other load falls on all sides; medians.
- a base's first load: a diffusers folder against the same weights as one original-layout checkpoint
  (`from_single_file` with the folder as config), each into a fresh pool.
- the runner's model file cache: a cold fetch (stream from the blob store, SHA-256, rename) against a warm hit.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from diffusers.utils import convert_state_dict_to_diffusers
from peft import LoraConfig, get_peft_model_state_dict
from safetensors.torch import save_file

from gpu_runner.model_cache import ModelFileCache
from gpu_runner.pipeline import AdapterRef, GenerationRequest, PipelinePool, StepReport
from gpu_runner.tiny_model import ensure_tiny_model
from infra.storage.local import LocalBlobStore
from tests.gpu_runner.checkpoint_support import write_checkpoint


def _ignore(_report: StepReport) -> None:
    return None


def _never(_key: str) -> bool:
    return False


def _lora(base: Path, folder: Path) -> Path:
    unet = UNet2DConditionModel.from_pretrained(base / "unet")
    torch.manual_seed(0)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)),
        weight_name="style.safetensors")
    return folder / "style.safetensors"


def _timed(work: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    work(*args)
    return time.perf_counter() - start


def _generate(pool: PipelinePool, request: GenerationRequest) -> None:
    pool.generate([request], on_step=_ignore, is_canceled=_never)


def _row(name: str, seconds: float, baseline: float) -> None:
    print(f"{name:<58} {seconds * 1000:9.1f} ms  {seconds / baseline:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        base = ensure_tiny_model(folder / "tiny")
        lora = _lora(base, folder)
        ti = folder / "toy.safetensors"
        save_file({"toy": torch.randn(2, 32, generator=torch.Generator().manual_seed(0))}, str(ti))
        plain = GenerationRequest(key="p", prompt="a toy red cat", negative_prompt="blurry", steps=args.steps,
                                  guidance_scale=7.0, scheduler="K_EULER_ANCESTRAL", seed=1, width=args.size,
                                  height=args.size, base=base, base_name="tiny")
        sides = {"plain": plain, "LoRA": replace(plain, adapters=(AdapterRef(lora, "lora", 0.8),)),
                 "textual inversion": replace(plain, adapters=(AdapterRef(ti, "ti", token="toy"),))}
        pool = PipelinePool(memory_budget_bytes=2**30, preview_every_steps=0)
        pool.generate([plain], on_step=_ignore, is_canceled=_never)  # load and warm up
        times: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(args.repeats):
            for side, request in sides.items():
                times[side].append(_timed(_generate, pool, request))
        medians = {side: statistics.median(values) for side, values in times.items()}
        print(f"per request, {args.size}x{args.size}, {args.steps} steps, median of {args.repeats}:")
        for side in sides:
            _row(f"  {side}", medians[side], medians["plain"])

        checkpoint = folder / "tiny.safetensors"
        write_checkpoint(base, checkpoint)
        loads: dict[str, list[float]] = {"diffusers folder": [], "single original-layout file": []}
        for _ in range(3):
            for side, (path, config) in {"diffusers folder": (base, None),
                                         "single original-layout file": (checkpoint, base)}.items():
                fresh = PipelinePool(memory_budget_bytes=2**30, preview_every_steps=0)
                request = replace(plain, base=path, base_config=config, steps=1)
                loads[side].append(_timed(_generate, fresh, request))
        first = {side: statistics.median(values) for side, values in loads.items()}
        print("a base's first load and a 1-step image, fresh pool, median of 3:")
        for side in loads:
            _row(f"  {side}", first[side], first["diffusers folder"])

        blobs = LocalBlobStore(folder / "blobs")
        key = blobs.put(checkpoint.read_bytes(), "application/x-safetensors")
        cold, warm = [], []
        for n in range(args.repeats):
            cache = ModelFileCache(folder / f"cache-{n}", 2**30, blobs)
            cold.append(_timed(cache.fetch, [key]))
            warm.append(_timed(cache.fetch, [key]))
        size = checkpoint.stat().st_size
        print(f"model file cache, a {size / 2**20:.1f} MiB file from the local blob store, median of {args.repeats}:")
        _row("  warm (already fetched: one stat and utime)", statistics.median(warm), statistics.median(warm))
        _row("  cold (stream, SHA-256, atomic rename)", statistics.median(cold), statistics.median(warm))


if __name__ == "__main__":
    main()
