"""SD1.5-shaped generation on a GPU: our pipeline path against a plain diffusers call, and cross-request batching
against one request at a time, with the peak GPU memory. Random weights of SD1.5's exact shapes (859.5M UNet,
83.7M VAE, 123.1M text encoder), so the speed is SD1.5's. Prints figures, asserts nothing.

Self-contained: imports torch, transformers, diffusers and this repository's `gpu_runner` library only (not the
rest of aidraw), so it runs on a GPU machine without our venv. compel (and its pyparsing) and diffusers are pure
Python: where missing, put their wheels on PYTHONPATH (`PYTHONPATH=.:wheels/diffusers-0.42.1-py3-none-any.whl:...`).

    python3 bench/gpu_sd15.py [--batch 4] [--steps 25] [--size 512] [--compile] [--channels-last] [--repeat 3]
    python3 bench/gpu_sd15.py --tiny      # CPU smoke test: the tiny shapes, 64x64, 3 steps, float32

(a) the same batch on both sides: `PipelinePool.generate(batch)` against
    `StableDiffusionPipeline(...)([prompts], generator=[...])` plus the same PNG encoding;
(b) `PipelinePool.generate(batch)` against the same requests one `generate` call each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffusers import (
    AutoencoderKL,
    EulerAncestralDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel

from gpu_runner.pipeline import GenerationRequest, PipelinePool, StepReport
from gpu_runner.pipeline.png import a1111_parameters, encode_png
from gpu_runner.tiny_model import ensure_tiny_model, local_tokenizer, save_sd_folder


def build_sd15(folder: Path) -> Path:
    """NOTES.md's SD1.5 shapes with random weights, saved in fp16 as a diffusers folder."""
    tokenizer = local_tokenizer(folder.parent / "tokenizer-src")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768, attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4, sample_size=512,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
        max_position_embeddings=77, hidden_act="quick_gelu", bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    modules: list[Any] = [unet, vae, text_encoder]
    for module in modules:
        module.to(torch.float16)
    save_sd_folder(folder, unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
    return folder


def timed(device: str, action: Callable[[], None], repeat: int) -> tuple[float, float]:
    """Median seconds of `repeat` runs, and the peak GPU memory (GiB) they reached."""
    times = []
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for _ in range(repeat):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        action()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0
    return statistics.median(times), peak


def measure_plain(
    base: Path, requests: list[GenerationRequest], device: str, dtype: torch.dtype, repeat: int
) -> tuple[float, float]:
    """A plain diffusers call on the whole batch, one generator per image, plus the same PNG encoding."""
    plain = StableDiffusionPipeline.from_pretrained(base, dtype=dtype, local_files_only=True,
                                                    safety_checker=None, requires_safety_checker=False)
    plain.scheduler = EulerAncestralDiscreteScheduler.from_config(plain.scheduler.config)
    plain.set_progress_bar_config(disable=True)
    plain.to(device)
    first = requests[0]

    def run_plain() -> None:
        images = plain(
            [r.prompt for r in requests], negative_prompt=[r.negative_prompt for r in requests],
            num_inference_steps=first.steps, guidance_scale=first.guidance_scale, height=first.height,
            width=first.width, generator=[torch.Generator().manual_seed(r.seed) for r in requests],
        ).images
        for request, image in zip(requests, images, strict=True):
            encode_png(image, a1111_parameters(request, "0000000000", {}))

    run_plain()
    result = timed(device, run_plain, repeat)
    plain.to("cpu")
    if device == "cuda":
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test with the tiny model")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    if args.tiny:
        args.size, args.steps, args.repeat = 64, 3, 1
    device = "cpu" if args.tiny else "cuda"
    dtype = torch.float32 if args.tiny else torch.float16

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        base = ensure_tiny_model(Path(folder) / "tiny") if args.tiny else build_sd15(Path(folder) / "sd15")
        print(f"model built in {time.perf_counter() - started:.0f} s")
        requests = [
            GenerationRequest(
                key=f"r{i}", prompt=f"a photo of a red cat, number {i}", negative_prompt="blurry",
                steps=args.steps, guidance_scale=7.5, scheduler="K_EULER_ANCESTRAL", seed=i, width=args.size,
                height=args.size, base=base, base_name="sd15-random",
            )
            for i in range(args.batch)
        ]
        plain_s, plain_peak = measure_plain(base, requests, device, dtype, args.repeat)

        pool = PipelinePool(
            device=device, dtype="float32" if args.tiny else "float16", memory_budget_bytes=16 * 2**30,
            compile=args.compile, channels_last=args.channels_last,
        )

        def ignore(_report: StepReport) -> None:
            return None

        def never(_key: str) -> bool:
            return False

        def run_batched() -> None:
            pool.generate(requests, on_step=ignore, is_canceled=never)

        def run_single() -> None:
            for request in requests:
                pool.generate([request], on_step=ignore, is_canceled=never)

        warm = time.perf_counter()
        run_batched()
        run_single()  # compile specialises on the batch size too
        print(f"our path warmed up in {time.perf_counter() - warm:.0f} s")
        batched_s, batched_peak = timed(device, run_batched, args.repeat)
        single_s, single_peak = timed(device, run_single, args.repeat)

    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    n = args.batch
    print(f"{name}: {'tiny' if args.tiny else 'SD1.5-shaped'} {args.size}x{args.size}, {args.steps} steps, Euler a, "
          f"batch {n}, {dtype}, compile={args.compile}, channels_last={args.channels_last}")
    print(f"(a) plain diffusers call + PNG : {n / plain_s:6.2f} images/s  peak {plain_peak:5.1f} GiB")
    print(f"    PipelinePool.generate      : {n / batched_s:6.2f} images/s  peak {batched_peak:5.1f} GiB"
          f"  = {plain_s / batched_s:.2f}x plain")
    print(f"(b) one request per call       : {n / single_s:6.2f} images/s  peak {single_peak:5.1f} GiB")
    print(f"    cross-request batch of {n}   : {n / batched_s:6.2f} images/s  = {single_s / batched_s:.2f}x")


if __name__ == "__main__":
    main()
