"""LoRA training steps per second at 512x512 on an SD1.5-shaped model: our trainer against the diffusers example
recipe's loop (train_text_to_image_lora.py: frozen UNet in half precision, LoRA weights in float32, AdamW, autocast,
rank 4 on to_q/to_k/to_v/to_out.0), same run, same batch, with each side's peak GPU memory. Random weights of
SD1.5's exact shapes. Prints figures, asserts nothing.

Self-contained: torch, transformers, diffusers, peft and this repository's `gpu_runner.training` only (diffusers is
pure Python: where missing, put its wheel on PYTHONPATH).

    python3 bench/gpu_lora_train.py [--batch 4] [--steps 30] [--size 512]
    python3 bench/gpu_lora_train.py --tiny     # CPU smoke test: the tiny model, 32x32, 4 steps, float32
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from peft import LoraConfig
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel

from gpu_runner.tiny_model import ensure_tiny_model, local_tokenizer, save_sd_folder
from gpu_runner.training import Hooks, Progress, TrainingImage, TrainSpec, train


def build_sd15(folder: Path) -> Path:
    """SD1.5's shapes with random weights (as bench/gpu_sd15.py builds them), saved as a diffusers folder."""
    tokenizer = local_tokenizer(folder.parent / "tokenizer-src")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=768, attention_head_dim=8,
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
    save_sd_folder(folder, unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
    return folder


def images(count: int, size: int) -> list[TrainingImage]:
    rng = np.random.default_rng(0)
    return [TrainingImage(Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)), f"zqx photo {i}")
            for i in range(count)]


def peak_reset(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")


def ours(base: Path, batch: int, size: int, steps: int, device: str) -> tuple[float, float]:
    marks: list[float] = []

    def mark(_progress: Progress) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        marks.append(time.perf_counter())

    spec = TrainSpec("lora", str(base), ("zqx",), {"steps": steps, "batch_size": batch, "resolution": size,
                                                   "checkpoint_every": steps})
    peak_reset(device)
    train(spec, images(max(batch, 4), size), hooks=Hooks(on_progress=mark), device=device)
    return (len(marks) - 2) / (marks[-1] - marks[1]), peak_gib(device)  # steps 3.. (the first two warm up)


def recipe(base: Path, batch: int, size: int, steps: int, device: str) -> tuple[float, float]:
    """The diffusers example's inner loop, as its script runs it with --mixed_precision=fp16."""
    half = torch.float16 if device == "cuda" else torch.float32
    unet: Any = UNet2DConditionModel.from_pretrained(base / "unet").to(device, half)
    text: Any = CLIPTextModel.from_pretrained(base / "text_encoder")
    text.to(device, half)
    scheduler = DDPMScheduler.from_pretrained(base / "scheduler")
    unet.requires_grad_(False)
    text.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scaler = torch.amp.GradScaler(device, enabled=device == "cuda")
    latents = torch.randn(batch, 4, size // 8, size // 8, device=device)  # the VAE's part is outside the loop timing
    ids = torch.zeros(batch, 77, dtype=torch.long, device=device)
    marks: list[float] = []
    peak_reset(device)
    for _ in range(steps):
        with torch.autocast(device, dtype=half, enabled=device == "cuda"):
            hidden = text(ids)[0]
            noise = torch.randn_like(latents)
            t = torch.randint(0, 1000, (batch,), device=device)
            noisy = scheduler.add_noise(latents, noise, t.cpu()) if device == "cpu" else scheduler.add_noise(
                latents, noise, t)
            loss = torch.nn.functional.mse_loss(unet(noisy, t, hidden).sample.float(), noise.float())
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        marks.append(time.perf_counter())
    return (len(marks) - 2) / (marks[-1] - marks[1]), peak_gib(device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test with the tiny model")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    if args.tiny:
        args.size, args.steps, args.batch = 32, 5, 2
    device = "cpu" if args.tiny else "cuda"
    with tempfile.TemporaryDirectory() as folder:
        base = ensure_tiny_model(Path(folder) / "tiny") if args.tiny else build_sd15(Path(folder) / "sd15")
        theirs_rate, theirs_peak = recipe(base, args.batch, args.size, args.steps, device)
        our_rate, our_peak = ours(base, args.batch, args.size, args.steps, device)
    shape = "tiny" if args.tiny else "SD1.5-shaped"
    print(f"LoRA training, {shape} {args.size}x{args.size}, batch {args.batch}, rank 4, {args.steps} steps, {device}")
    print(f"  diffusers example recipe: {theirs_rate:7.3f} steps/s  peak {theirs_peak:.2f} GiB")
    print(f"  gpu_runner.training:      {our_rate:7.3f} steps/s  peak {our_peak:.2f} GiB  "
          f"({our_rate / theirs_rate:.2f}x the recipe)")


if __name__ == "__main__":
    main()
