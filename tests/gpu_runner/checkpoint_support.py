"""A diffusers SD folder written as one checkpoint in the original (CompVis / A1111) layout, for tests.

diffusers reads that layout (`from_single_file`) but does not write it; this is the inverse of its key conversion
for SD1-shaped models of any depth (the tiny model's two blocks of one layer included): the UNet under
`model.diffusion_model.`, the VAE under `first_stage_model.` (mid-block attention as 1x1 convolutions), the text
encoder under `cond_stage_model.transformer.text_model.`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_bytes

_UNET_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
                ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
_VAE_RESNET = [("conv_shortcut", "nin_shortcut")]
_VAE_ATTENTION = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _rename(name: str, pairs: list[tuple[str, str]]) -> str:
    for new, old in pairs:
        name = name.replace(f".{new}.", f".{old}.")
    return name


def _unet_prefixes(config: Any) -> list[tuple[str, str]]:
    """(diffusers prefix, original prefix), most specific first."""
    layers, blocks = config.layers_per_block, len(config.block_out_channels)
    pairs = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
             ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
             ("mid_block.resnets.0.", "middle_block.0."), ("mid_block.attentions.0.", "middle_block.1."),
             ("mid_block.resnets.1.", "middle_block.2.")]
    for i in range(blocks):
        for j in range(layers):
            index = 1 + i * (layers + 1) + j
            pairs += [(f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{index}.0."),
                      (f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{index}.1.")]
        if i < blocks - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * (layers + 1)}.0.op."))
        has_attention = "CrossAttn" in config.up_block_types[i]
        for j in range(layers + 1):
            index = i * (layers + 1) + j
            pairs += [(f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{index}.0."),
                      (f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{index}.1.")]
        if i < blocks - 1:
            last = i * (layers + 1) + layers
            pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{last}.{2 if has_attention else 1}."))
    return pairs


def _unet(unet: Any) -> dict[str, torch.Tensor]:
    prefixes = _unet_prefixes(unet.config)
    out = {}
    for name, tensor in unet.state_dict().items():
        new, old = next((n, o) for n, o in prefixes if name.startswith(n))
        rest = _rename("." + name[len(new):], _UNET_RESNET)[1:] if ".resnets." in new or "mid_block.resnets" in new \
            else name[len(new):]
        out["model.diffusion_model." + old + rest] = tensor
    return out


def _vae_name(name: str, blocks: int) -> str:
    name = name.replace("conv_norm_out.", "norm_out.")
    for part in ("encoder", "decoder"):
        name = name.replace(f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.")
        name = name.replace(f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.")
        if f"{part}.mid_block.attentions.0." in name:
            name = _rename(name.replace(f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1."), _VAE_ATTENTION)
    for i in range(blocks):
        name = name.replace(f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block.")
        name = name.replace(f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.")
        name = name.replace(f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{blocks - 1 - i}.block.")
        name = name.replace(f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{blocks - 1 - i}.upsample.")
    return _rename(name, _VAE_RESNET)


def _vae(vae: Any) -> dict[str, torch.Tensor]:
    blocks = len(vae.config.block_out_channels)
    out = {}
    for name, tensor in vae.state_dict().items():
        new = _vae_name(name, blocks)
        if ".mid.attn_1." in new and new.rsplit(".", 2)[-2] in ("q", "k", "v", "proj_out") and tensor.dim() == 2:
            tensor = tensor[:, :, None, None]
        out["first_stage_model." + new] = tensor
    return out


def write_checkpoint(folder: Path, target: Path) -> bytes:
    """The SD folder `folder` as one original-layout safetensors checkpoint at `target`; returns its bytes."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True)
    text = CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True)
    tensors = {**_unet(unet), **_vae(vae)}
    tensors |= {"cond_stage_model.transformer.text_model." + k: v for k, v in text.state_dict().items()}
    data = save_bytes({k: v.contiguous() for k, v in tensors.items()})
    target.write_bytes(data)
    return data
