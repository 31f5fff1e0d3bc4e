"""What the pool refuses before any work, and how its base cache keeps within its memory budget."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from gpu_runner.pipeline import GenerationRequest, GenerationResult, PipelinePool, Unsupported
from gpu_runner.pipeline.cache import estimate_bytes
from tests.gpu_runner.conftest import ignore, never

MakeRequest = Callable[..., GenerationRequest]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scheduler": "K_HEUN"}, "scheduler 'K_HEUN' is not one of DDIM, K_EULER"),
        ({"width": 30}, "width must be a positive multiple of 8"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"strength": 0.5}, "img2img needs both init_image and strength"),
        ({"strength": 0.1, "steps": 5, "init_image": b"\x89PNG"}, "leaves no denoising step"),
        ({"strength": 0.5, "init_image": b"not an image"}, "cannot be read as an image"),
        ({"prompt": "a (cat:1.2.3)"}, "prompt weight '1.2.3' is not a number"),
        ({"base": Path("/nowhere/model")}, "does not exist on this runner"),
        ({"base": Path("/etc")}, "no model_index.json"),
    ],
)
def test_requests_that_cannot_be_served_are_refused_with_a_reason(
    pool: PipelinePool, make_request: MakeRequest, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(Unsupported, match=message.replace("(", r"\(")) as refused:
        pool.generate([make_request("ok"), make_request("bad", **changes)], on_step=ignore, is_canceled=never)
    assert refused.value.key == "bad"


def test_a_single_file_base_needs_a_local_config_folder(
    pool: PipelinePool, make_request: MakeRequest, tmp_path: Path, tiny_base: Path
) -> None:
    checkpoint = tmp_path / "model.safetensors"
    save_file({"junk": torch.zeros(1)}, str(checkpoint))
    with pytest.raises(Unsupported, match="needs a local diffusers config folder"):
        pool.check(make_request(base=checkpoint))
    with pytest.raises(Unsupported, match="could not be loaded"):  # offline: fails, never fetches
        pool.generate([make_request(base=checkpoint, base_config=tiny_base)], on_step=ignore, is_canceled=never)


def test_bases_beyond_the_memory_budget_are_evicted_least_recently_used_first(
    make_request: MakeRequest, tiny_base: Path, tmp_path: Path
) -> None:
    size = estimate_bytes(tiny_base, torch.float32)
    copies = [tiny_base]
    for name in ("b", "c"):
        copies.append(tmp_path / name)
        shutil.copytree(tiny_base, copies[-1])
    pool = PipelinePool(memory_budget_bytes=int(size * 2.5), preview_every_steps=0)
    for base in (copies[0], copies[1], copies[0], copies[2]):
        [result] = pool.generate([make_request(base=base, steps=1)], on_step=ignore, is_canceled=never)
        assert isinstance(result, GenerationResult)
    assert pool.loaded_bases == [copies[0], copies[2]]


def test_a_base_larger_than_the_budget_is_refused(make_request: MakeRequest, tiny_base: Path) -> None:
    small = PipelinePool(memory_budget_bytes=1000)
    with pytest.raises(Unsupported, match="more than this runner's model memory budget"):
        small.generate([make_request()], on_step=ignore, is_canceled=never)


def test_a_long_prompt_is_chunked_and_says_so(pool: PipelinePool, make_request: MakeRequest) -> None:
    long = make_request("long", prompt="a red cat " * 12, steps=1)  # ~120 tokens with the tiny tokenizer
    short = replace(long, key="short", prompt="a red cat")
    outcomes = pool.generate([long, short], on_step=ignore, is_canceled=never)
    assert [o.prompt_handling for o in outcomes if isinstance(o, GenerationResult)] == ["chunked", "whole"]
