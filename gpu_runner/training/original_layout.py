"""Diffusers weights -> the original Stable Diffusion single-file layout (what A1111, ComfyUI and diffusers'
`from_single_file` load).

The original (CompVis/LDM) checkpoint holds three models under three prefixes: the UNet under
`model.diffusion_model.` (numbered `input_blocks`/`middle_block`/`output_blocks`), the VAE under
`first_stage_model.` (`encoder.down.<i>.block.<j>`, its attention as 1x1 convolutions), the text encoder under
`cond_stage_model.` (SD1: `transformer.` + Hugging Face CLIP's own names; SD2: OpenCLIP's `model.` names, q/k/v
fused into `in_proj`). The mapping is diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py, derived
here from the model's config instead of SD1.5's fixed counts, so a smaller SD-shaped model (the tiny test model)
maps too. A key that no rule covers raises: a checkpoint never silently misses a weight.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

Tensors = dict[str, torch.Tensor]

_RESNET = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("norm2.", "out_layers.0."),
           ("conv2.", "out_layers.3."), ("time_emb_proj.", "emb_layers.1."), ("conv_shortcut.", "skip_connection.")]
_VAE_ATTENTION = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                  ("to_out.0.", "proj_out.")]


def _unet_prefixes(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    per_block = config["layers_per_block"]
    if not isinstance(per_block, int):
        raise ValueError("a UNet with a different layer count per block has no original SD layout")
    n = per_block + 1  # the original numbers one block's layers plus its down- or upsampler
    pairs = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
             ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
             ("mid_block.resnets.0.", "middle_block.0."), ("mid_block.attentions.0.", "middle_block.1."),
             ("mid_block.resnets.1.", "middle_block.2.")]
    for i, kind in enumerate(config["up_block_types"]):
        for j in range(per_block):
            pairs += [(f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{n * i + j + 1}.0."),
                      (f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{n * i + j + 1}.1.")]
        pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{n * (i + 1)}.0.op."))
        for j in range(n):
            pairs += [(f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{n * i + j}.0."),
                      (f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{n * i + j}.1.")]
        after = 2 if kind.startswith("CrossAttn") else 1  # the upsampler follows the attention where there is one
        pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{n * i + per_block}.{after}."))
    return pairs


def unet_to_original(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> Tensors:
    pairs = _unet_prefixes(config)
    out: Tensors = {}
    for key, value in state.items():
        prefix = next((p for p in pairs if key.startswith(p[0])), None)
        if prefix is None:
            raise ValueError(f"no original SD name for UNet weight {key}")
        rest = key[len(prefix[0]):]
        if ".resnets." in prefix[0]:
            rest = next((new + rest[len(old):] for old, new in _RESNET if rest.startswith(old)), rest)
        out["model.diffusion_model." + prefix[1] + rest] = value
    return out


def vae_to_original(state: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> Tensors:
    last_up = len(config["up_block_types"]) - 1
    out: Tensors = {}
    for key, value in state.items():
        new = re.sub(r"^(encoder|decoder)\.conv_norm_out\.", r"\1.norm_out.", key)
        new = re.sub(r"^encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", new)
        new = re.sub(r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", new)
        new = re.sub(r"^decoder\.up_blocks\.(\d+)\.(resnets|upsamplers\.0)\.",
                     lambda m: f"decoder.up.{last_up - int(m[1])}.{'block' if m[2] == 'resnets' else 'upsample'}.",
                     new)
        new = re.sub(r"\.mid_block\.resnets\.(\d+)\.", lambda m: f".mid.block_{int(m[1]) + 1}.", new)
        new = new.replace("conv_shortcut.", "nin_shortcut.")
        if ".mid_block.attentions.0." in new:
            head, rest = new.split(".mid_block.attentions.0.")
            rest = next((o + rest[len(d):] for d, o in _VAE_ATTENTION if rest.startswith(d)), rest)
            new = f"{head}.mid.attn_1.{rest}"
            if value.dim() == 2:  # the original's attention projections are 1x1 convolutions
                value = value[:, :, None, None]
        if "_blocks." in new:
            raise ValueError(f"no original SD name for VAE weight {key}")
        out["first_stage_model." + new] = value
    return out


def clip_to_original(state: Mapping[str, torch.Tensor]) -> Tensors:
    """SD1's text encoder: Hugging Face CLIP names under `cond_stage_model.transformer.text_model.`."""
    return {"cond_stage_model.transformer.text_model." + key.removeprefix("text_model."): value
            for key, value in state.items() if not key.endswith("position_ids")}


def open_clip_to_original(state: Mapping[str, torch.Tensor]) -> Tensors:
    """SD2's text encoder: OpenCLIP names under `cond_stage_model.model.`, q/k/v fused into `in_proj`."""
    fixed = {"embeddings.token_embedding.weight": "token_embedding.weight",
             "embeddings.position_embedding.weight": "positional_embedding",
             "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}
    parts = [("self_attn.out_proj.", "attn.out_proj."), ("layer_norm1.", "ln_1."), ("layer_norm2.", "ln_2."),
             ("mlp.fc1.", "mlp.c_fc."), ("mlp.fc2.", "mlp.c_proj.")]
    out: Tensors = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        name = key.removeprefix("text_model.")
        if name.endswith("position_ids"):
            continue
        if name in fixed:
            out["cond_stage_model.model." + fixed[name]] = value
            continue
        match = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)", name)
        if match is None:
            raise ValueError(f"no original SD name for text encoder weight {key}")
        block, rest = f"cond_stage_model.model.transformer.resblocks.{match[1]}.", match[2]
        projection = re.fullmatch(r"self_attn\.([qkv])_proj\.(weight|bias)", rest)
        if projection:
            fused.setdefault(f"{block}attn.in_proj_{projection[2]}", {})[projection[1]] = value
            continue
        renamed = next((new + rest[len(old):] for old, new in parts if rest.startswith(old)), None)
        if renamed is None:
            raise ValueError(f"no original SD name for text encoder weight {key}")
        out[block + renamed] = value
    for name, qkv in fused.items():
        out[name] = torch.cat([qkv["q"], qkv["k"], qkv["v"]])
    return out


def to_original(unet: Any, vae: Any, text_encoder: Any) -> Tensors:
    """One state dict in the original layout; the text encoder as OpenCLIP where it is SD2's (1024 wide)."""
    text_state = text_encoder.state_dict()
    text = open_clip_to_original(text_state) if text_encoder.config.hidden_size == 1024 else clip_to_original(
        text_state)
    tensors = unet_to_original(unet.state_dict(), unet.config) | vae_to_original(vae.state_dict(), vae.config)
    return {key: value.detach().cpu().contiguous() for key, value in (tensors | text).items()}
