"""PipelinePool.generate on the tiny model (64x64, 20 steps, Euler a) against a bare diffusers call with the same
PNG encoding, and batched against one request at a time, all in the same run. Prints figures, asserts nothing.

    .venv/bin/python -m bench.generation [--images 4] [--batch 4] [--steps 20] [--size 64]

Runs alternate (bare, ours, bare, ours, ...) so that load from other processes falls on both sides alike;
per-image times are medians. The bare side is `StableDiffusionPipeline(...)(prompt, generator=...)` on its own
copy of the same folder with the same scheduler, then `encode_png` with the same recipe text.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline

from gpu_runner.pipeline import GenerationRequest, PipelinePool, StepReport
from gpu_runner.pipeline.png import a1111_parameters, encode_png
from gpu_runner.tiny_model import ensure_tiny_model


def _ignore(_report: StepReport) -> None:
    return None


def _never(_key: str) -> bool:
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = ensure_tiny_model(Path(folder) / "tiny")
        requests = [
            GenerationRequest(
                key=f"r{i}", prompt=f"a red cat number {i}", negative_prompt="blurry", steps=args.steps,
                guidance_scale=7.0, scheduler="K_EULER_ANCESTRAL", seed=i, width=args.size, height=args.size,
                base=base, base_name="tiny",
            )
            for i in range(max(args.images, args.batch))
        ]
        pool = PipelinePool(memory_budget_bytes=2**30)
        bare = StableDiffusionPipeline.from_pretrained(base, local_files_only=True, safety_checker=None,
                                                       requires_safety_checker=False)
        bare.scheduler = EulerAncestralDiscreteScheduler.from_config(bare.scheduler.config)
        bare.set_progress_bar_config(disable=True)

        def run_bare(request: GenerationRequest) -> None:
            image = bare(
                request.prompt, negative_prompt=request.negative_prompt, num_inference_steps=request.steps,
                guidance_scale=request.guidance_scale, height=request.height, width=request.width,
                generator=torch.Generator().manual_seed(request.seed),
            ).images[0]
            encode_png(image, a1111_parameters(request, "0000000000", {}))

        def run_ours(batch: list[GenerationRequest]) -> None:
            pool.generate(batch, on_step=_ignore, is_canceled=_never)

        run_bare(requests[0])  # warm both (first calls allocate)
        run_ours(requests[:1])
        bare_s, ours_s = [], []
        for request in requests[: args.images]:
            started = time.perf_counter()
            run_bare(request)
            bare_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            run_ours([request])
            ours_s.append(time.perf_counter() - started)
        batch = requests[: args.batch]
        single_s, batched_s = [], []
        for _ in range(2):
            started = time.perf_counter()
            for request in batch:
                run_ours([request])
            single_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            run_ours(batch)
            batched_s.append(time.perf_counter() - started)

    bare_ips, ours_ips = 1 / statistics.median(bare_s), 1 / statistics.median(ours_s)
    single_ips = args.batch / statistics.median(single_s)
    batched_ips = args.batch / statistics.median(batched_s)
    threads = torch.get_num_threads()
    print(f"tiny model, {args.size}x{args.size}, {args.steps} steps, Euler a, CFG 7, CPU threads {threads}")
    print(f"bare diffusers call + PNG : {bare_ips:6.2f} images/s  ({statistics.median(bare_s) * 1000:7.0f} ms/image)")
    print(f"PipelinePool.generate     : {ours_ips:6.2f} images/s  ({statistics.median(ours_s) * 1000:7.0f} ms/image)"
          f"  = {ours_ips / bare_ips:.2f}x bare")
    print(f"one request at a time     : {single_ips:6.2f} images/s")
    print(f"batched ({args.batch} per batch)      : {batched_ips:6.2f} images/s  = {batched_ips / single_ips:.2f}x")


if __name__ == "__main__":
    main()
