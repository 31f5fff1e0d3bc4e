"""A diffusers SD folder written as one checkpoint in the original (CompVis / A1111) layout, for tests: what a user
uploads or the ckp trainer stores (gpu_runner/training/original_layout.py does the key mapping)."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import save as save_bytes

from gpu_runner.training.original_layout import to_original


def write_checkpoint(folder: Path, target: Path) -> bytes:
    """The SD folder `folder` as one original-layout safetensors checkpoint at `target`; returns its bytes."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True)
    text = CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True)
    data = save_bytes({k: v.contiguous() for k, v in to_original(unet, vae, text).items()})
    target.write_bytes(data)
    return data
