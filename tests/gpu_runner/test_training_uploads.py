"""Uploaded model files: safetensors only, their keys and widths checked against the type and the base."""

from __future__ import annotations

import struct

import pytest
import torch
from safetensors.torch import save

from gpu_runner.training.lora import to_kohya
from gpu_runner.training.uploads import InvalidModelFile, check_model_file

K = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"


def _lora(width: int) -> bytes:
    return save({f"unet.{K}.lora_A.weight": torch.zeros(4, width), f"unet.{K}.lora_B.weight": torch.zeros(320, 4)})


def _check(data: bytes, model_type: str, base: str = "SD1.5") -> str:
    return check_model_file(data, len(data), model_type, base).layout


def test_a_lora_in_either_layout_for_its_base_passes() -> None:
    assert _check(_lora(768), "lora") == "diffusers"
    assert _check(to_kohya(_lora(768)), "lora") == "kohya"
    assert _check(_lora(1024), "lora", "SD2") == "diffusers"


def test_a_lora_for_another_base_or_with_foreign_keys_is_refused() -> None:
    with pytest.raises(InvalidModelFile, match="another base"):
        _check(_lora(1024), "lora")
    with pytest.raises(InvalidModelFile, match="not a LoRA"):
        _check(save({"model.diffusion_model.x": torch.zeros(1)}), "lora")


def test_embeddings_hypernetworks_and_checkpoints_are_told_apart() -> None:
    assert _check(save({"emb_params": torch.zeros(2, 768)}), "ti") == "a1111"
    with pytest.raises(InvalidModelFile, match="shape"):
        _check(save({"emb_params": torch.zeros(2, 1024)}), "ti")
    with pytest.raises(InvalidModelFile, match="two"):
        _check(save({"clip_l": torch.zeros(2, 768), "clip_g": torch.zeros(2, 1280)}), "ti")
    hyper = {f"768.{i}.linear.{n}.weight": torch.zeros(1) for i in (0, 1) for n in (0, 1)}
    assert _check(save(hyper), "hyper") == "a1111"
    probe = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    ckp = {probe: torch.zeros(320, 768), "first_stage_model.a": torch.zeros(1), "cond_stage_model.b": torch.zeros(1)}
    assert _check(save(ckp), "ckp") == "original"
    with pytest.raises(InvalidModelFile, match="another base"):
        _check(save(ckp), "ckp", "SD2")
    with pytest.raises(InvalidModelFile, match="no first_stage_model"):
        _check(save({probe: torch.zeros(320, 768)}), "ckp")


def test_what_is_not_safetensors_is_refused_without_reading_weights() -> None:
    with pytest.raises(InvalidModelFile, match="header length"):
        _check(b"PK\x03\x04" + b"\0" * 100, "lora")  # a zip (torch's pickle archive)
    with pytest.raises(InvalidModelFile, match="not JSON"):
        _check(struct.pack("<Q", 4) + b"\x80\x04K.", "lora")
    good = _lora(768)
    with pytest.raises(InvalidModelFile, match="outside the file"):
        _check(good[:-8], "lora")
    with pytest.raises(InvalidModelFile, match="at most 16 MiB"):
        check_model_file(good, 17 * 2**20, "ti", "SD1.5")
    with pytest.raises(InvalidModelFile, match="unknown base"):
        _check(good, "lora", "SDXL")
