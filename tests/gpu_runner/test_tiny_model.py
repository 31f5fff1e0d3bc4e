"""The tiny model is built once, atomically, and the same everywhere."""

from __future__ import annotations

from pathlib import Path

from transformers import CLIPTokenizer

from gpu_runner.tiny_model import ensure_tiny_model


def test_building_again_is_a_no_op_and_a_second_build_is_byte_identical(tiny_base: Path, tmp_path: Path) -> None:
    weights = tiny_base / "unet" / "diffusion_pytorch_model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert ensure_tiny_model(tiny_base) == tiny_base
    assert weights.stat().st_mtime_ns == stamp
    other = ensure_tiny_model(tmp_path / "again")
    for part in ("unet", "vae"):
        name = "diffusion_pytorch_model.safetensors"
        assert (other / part / name).read_bytes() == (tiny_base / part / name).read_bytes()
    assert (other / "text_encoder" / "model.safetensors").read_bytes() == (
        tiny_base / "text_encoder" / "model.safetensors").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no staging folder left behind


def test_its_tokenizer_reads_text_with_clip_markers(tiny_base: Path) -> None:
    tokenizer = CLIPTokenizer.from_pretrained(tiny_base / "tokenizer")
    ids = tokenizer("a cat").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert len(ids) == 2 + len("a cat") - 1  # one token per letter, the space folded into "a</w>"
    assert tokenizer.model_max_length == 77
