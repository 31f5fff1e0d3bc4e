"""Uploaded model files: safetensors only, described exactly by their header, their keys and widths checked
against the type and the base; a diffusers LoRA rewritten in kohya's layout without touching its weights."""

from __future__ import annotations

import json
import struct

import pytest
from safetensors.numpy import load

from infra.model_files import InvalidModelFile, check_model_file, header_bytes_needed, kohya_rewrite, read_header
from tests.model_files import K, checkpoint, embedding, hypernetwork, kohya_lora, lora, safetensors


def _check(data: bytes, model_type: str, base: str = "SD1.5") -> str:
    return check_model_file(data, len(data), model_type, base).layout


def _with_header(header: object, data: bytes = b"") -> bytes:
    body = json.dumps(header).encode()
    return struct.pack("<Q", len(body)) + body + data


def test_a_lora_in_either_layout_for_its_base_passes() -> None:
    assert _check(lora(768), "lora") == "diffusers"
    assert _check(kohya_lora(768), "lora") == "kohya"
    assert _check(lora(1024), "lora", "SD2") == "diffusers"


def test_a_lora_for_another_base_or_with_foreign_keys_is_refused() -> None:
    with pytest.raises(InvalidModelFile, match="another base"):
        _check(lora(1024), "lora")
    with pytest.raises(InvalidModelFile, match="not a LoRA"):
        _check(safetensors({"model.diffusion_model.x": ("F32", [1])}), "lora")


def test_embeddings_hypernetworks_and_checkpoints_are_told_apart() -> None:
    assert _check(embedding(768), "ti") == "a1111"
    with pytest.raises(InvalidModelFile, match="shape"):
        _check(embedding(1024), "ti")
    with pytest.raises(InvalidModelFile, match="two"):
        _check(safetensors({"clip_l": ("F32", [2, 768]), "clip_g": ("F32", [2, 1280])}), "ti")
    assert _check(hypernetwork(768), "hyper") == "a1111"
    assert _check(checkpoint(768), "ckp") == "original"
    with pytest.raises(InvalidModelFile, match="another base"):
        _check(checkpoint(768), "ckp", "SD2")
    with pytest.raises(InvalidModelFile, match="no first_stage_model"):
        _check(safetensors({"model.diffusion_model.x": ("F32", [1])}), "ckp")
    with pytest.raises(InvalidModelFile, match="not a full checkpoint"):
        _check(lora(768), "ckp")


def test_what_is_not_safetensors_is_refused_without_reading_weights() -> None:
    with pytest.raises(InvalidModelFile, match="header length"):
        _check(b"PK\x03\x04" + b"\0" * 100, "lora")  # a zip (torch's pickle archive)
    with pytest.raises(InvalidModelFile, match="not a safetensors file"):
        _check(b"\x80\x04\x95" + b"\0" * 100, "lora")  # a bare pickle
    with pytest.raises(InvalidModelFile, match="header length"):
        header_bytes_needed(struct.pack("<Q", 2**30))  # a 1 GiB header is never read
    with pytest.raises(InvalidModelFile, match="not JSON"):
        _check(struct.pack("<Q", 4) + b"\x80\x04K.", "lora")
    with pytest.raises(InvalidModelFile, match="not JSON"):
        _check(struct.pack("<Q", 200_000) + b"[" * 200_000, "lora")  # nesting deeper than a parser's stack
    with pytest.raises(InvalidModelFile, match="shorter"):
        _check(b"\x01\x02", "lora")
    with pytest.raises(InvalidModelFile, match="at most 16 MiB"):
        check_model_file(lora(), 17 * 2**20, "ti", "SD1.5")
    with pytest.raises(InvalidModelFile, match="unknown base"):
        _check(lora(), "lora", "SDXL")


def test_a_header_must_describe_the_file_exactly() -> None:
    good = lora(768)
    with pytest.raises(InvalidModelFile, match=r"outside the file|truncated"):
        _check(good[:-8], "lora")  # truncated
    with pytest.raises(InvalidModelFile, match="padded"):
        _check(good + b"\0" * 8, "lora")  # bytes no tensor owns
    huge = {f"unet.{K}.lora_A.weight": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}
    with pytest.raises(InvalidModelFile, match="does not match"):
        _check(_with_header(huge, b"\0" * 16), "lora")  # claims far more than it holds
    overlap = {f"unet.{K}.lora_A.weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
               f"unet.{K}.lora_B.weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    with pytest.raises(InvalidModelFile, match="overlap"):
        _check(_with_header(overlap, b"\0" * 32), "lora")
    with pytest.raises(InvalidModelFile, match="bad shape"):
        _check(_with_header({"x": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, b"\0" * 4), "ti")
    with pytest.raises(InvalidModelFile, match="no tensors"):
        _check(_with_header({"__metadata__": {}}), "ti")


def test_kohya_rewrite_renames_keys_and_appends_alphas_over_the_same_data() -> None:
    data = lora(768, rank=4)
    header = read_header(data, len(data))
    head, trailer = kohya_rewrite(header)
    rewritten = head + data[header_bytes_needed(data):] + trailer
    assert _check(rewritten, "lora") == "kohya"
    new = read_header(rewritten, len(rewritten))
    name = "lora_unet_" + K.replace(".", "_")
    assert new[f"{name}.lora_down.weight"]["shape"] == [4, 768]
    assert new[f"{name}.lora_up.weight"]["shape"] == [320, 4]
    offsets = new[f"{name}.alpha"]["data_offsets"]
    assert isinstance(offsets, list)
    start = header_bytes_needed(rewritten) + offsets[0]
    assert struct.unpack("<f", rewritten[start:start + 4]) == (4.0,)
    loaded = load(rewritten)  # the safetensors library's own reader takes it, weights unchanged
    assert float(loaded[f"{name}.alpha"]) == 4.0
    assert (loaded[f"{name}.lora_up.weight"] == load(data)[f"unet.{K}.lora_B.weight"]).all()
    with pytest.raises(InvalidModelFile, match="converts to kohya"):
        kohya_rewrite(read_header(kohya_lora(), len(kohya_lora())))


def test_the_download_name_is_safe_in_a_header_and_kept_in_utf8() -> None:
    from query.routes.model_files import disposition

    assert disposition("Night Style") == ('attachment; filename="Night Style.safetensors"; '
                                          "filename*=UTF-8''Night%20Style.safetensors")
    hostile = disposition('夜 "x"\r\nSet-Cookie: a=b; ../../etc')
    assert "\r" not in hostile and "\n" not in hostile
    plain = hostile.split('filename="', 1)[1].split('"', 1)[0]
    assert plain == "_ _x_Set-Cookie_ a_b_ .._.._etc.safetensors"
    assert "filename*=UTF-8''%E5%A4%9C%20%22x%22%0D%0ASet-Cookie" in hostile
    assert disposition("...").startswith('attachment; filename="model.safetensors"')
