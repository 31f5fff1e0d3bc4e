"""A tiny Stable-Diffusion-shaped model with random weights, built locally, so the real code path runs anywhere.

It makes noise, but every part a real SD1.5 base has is there (CLIP tokenizer and text encoder, UNet with
cross-attention, an 8x VAE, a PNDM scheduler config), in the diffusers folder layout, in well under a second on a
CPU. Weights come from a fixed seed, so the folder is the same on every machine with the same torch build.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

SEED = 20261206
MARKER = "model_index.json"

# Byte-level BPE needs every byte's printable stand-in; words are spelt letter by letter (no merges), so a prompt
# costs about one token per character: long prompts reach the 77-token window quickly, as chunking tests want.
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def _byte_alphabet() -> list[str]:
    """The printable characters GPT-2/CLIP byte-level BPE uses for the 256 bytes, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _write_tokenizer(folder: Path) -> None:
    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + [_BOS, _EOS]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    config = {"model_max_length": 77, "bos_token": _BOS, "eos_token": _EOS, "pad_token": _EOS, "unk_token": _EOS}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")


def local_tokenizer(folder: Path) -> Any:
    """A CLIP tokenizer over the byte alphabet, written to `folder` and loaded back from it.

    transformers 5 ignores `CLIPTokenizer(vocab_file=...)` silently: loading the written files as a folder works.
    """
    from transformers import CLIPTokenizer

    _write_tokenizer(folder)
    return CLIPTokenizer.from_pretrained(folder)


def save_sd_folder(folder: Path, *, unet: Any, vae: Any, text_encoder: Any, tokenizer: Any) -> None:
    """Save SD-shaped parts as a diffusers folder with SD1.5's PNDM scheduler config and no safety checker."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)  # type: ignore[attr-defined]


def _build(folder: Path) -> None:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = local_tokenizer(folder.parent / f"{folder.name}-tokenizer")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32, attention_head_dim=4, norm_num_groups=8,
        )
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
            block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, sample_size=64,
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ))
    save_sd_folder(folder, unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)


def ensure_tiny_model(folder: Path) -> Path:
    """Build the tiny model in `folder` unless it is there already; return the folder.

    Built in a sibling temporary folder and renamed into place, so a crash or a concurrent builder never leaves a
    half-written model where a loader would take it for a whole one.
    """
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        _build(staging / "model")
        try:
            os.rename(staging / "model", folder)
        except OSError:
            if not (folder / MARKER).is_file():  # lost the race to another builder, whose result stands
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
