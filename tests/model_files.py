"""Safetensors files built by hand (no torch): small models of each kind for the upload and download tests."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

SIZES = {"F32": 4, "F16": 2}
K = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"


def safetensors(tensors: Mapping[str, tuple[str, list[int]]], fill: bytes = b"\x01") -> bytes:
    """A well-formed file: each tensor (dtype, shape) filled with `fill` repeated."""
    header: dict[str, object] = {}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = SIZES[dtype]
        for dim in shape:
            size *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    body = json.dumps(header).encode()
    return struct.pack("<Q", len(body)) + body + (fill * offset)[:offset]


def lora(width: int = 768, rank: int = 4) -> bytes:
    return safetensors({f"unet.{K}.lora_A.weight": ("F32", [rank, width]),
                        f"unet.{K}.lora_B.weight": ("F32", [320, rank])})


def kohya_lora(width: int = 768) -> bytes:
    name = "lora_unet_" + K.replace(".", "_")
    return safetensors({f"{name}.lora_down.weight": ("F16", [4, width]), f"{name}.lora_up.weight": ("F16", [320, 4]),
                        f"{name}.alpha": ("F32", [])})


def embedding(width: int = 768, vectors: int = 2) -> bytes:
    return safetensors({"emb_params": ("F32", [vectors, width])})


def hypernetwork(width: int = 768) -> bytes:
    return safetensors({f"{width}.{i}.linear.{n}.weight": ("F32", [2, 2]) for i in (0, 1) for n in (0, 1)})


PROBE = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"


def checkpoint(width: int = 768) -> bytes:
    return safetensors({PROBE: ("F16", [320, width]), "first_stage_model.a": ("F16", [1]),
                        "cond_stage_model.b": ("F16", [1])})
