"""Hypernetworks at inference: they change the image, scale with their weight, and leave the base bit-identical."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from gpu_runner.pipeline import AdapterRef, GenerationRequest, GenerationResult, PipelinePool, Unsupported
from tests.gpu_runner.conftest import ignore, never, pixels

MakeRequest = Callable[..., GenerationRequest]


def _hyper(path: Path, width: int, std: float = 0.3) -> Path:
    """A1111's layer structure 1, 2, 1 with a relu between, per key (0) and value (1) module."""
    generator = torch.Generator().manual_seed(width)
    tensors = {}
    for which in (0, 1):
        for index, (rows, cols) in ((0, (2 * width, width)), (2, (width, 2 * width))):
            tensors[f"{width}.{which}.linear.{index}.weight"] = torch.randn(rows, cols, generator=generator) * std
            tensors[f"{width}.{which}.linear.{index}.bias"] = torch.zeros(rows)
    save_file(tensors, str(path), metadata={"activation_func": "relu"})
    return path


def _image(pool: PipelinePool, request: GenerationRequest) -> np.ndarray:
    [result] = pool.generate([request], on_step=ignore, is_canceled=never)
    assert isinstance(result, GenerationResult)
    return pixels(result.png)


def test_a_hypernetwork_changes_the_image_and_the_base_comes_back_bit_identical(
    pool: PipelinePool, make_request: MakeRequest, tmp_path: Path
) -> None:
    hyper = _hyper(tmp_path / "h.safetensors", 32)
    plain = make_request("plain", scheduler="DDIM", steps=3)
    before = _image(pool, plain)
    unet = pool._cache.get(plain.base, None).pipe.unet
    state = {k: v.clone() for k, v in unet.state_dict().items()}
    modules = [type(m).__name__ for m in unet.modules()]
    changed = _image(pool, replace(plain, key="h", adapters=(AdapterRef(hyper, "hyper", 1.0),)))
    zero = _image(pool, replace(plain, key="z", adapters=(AdapterRef(hyper, "hyper", 0.0),)))
    assert np.abs(changed - before).max() > 1
    assert np.array_equal(zero, before)
    assert [type(m).__name__ for m in unet.modules()] == modules
    assert all(torch.equal(v, unet.state_dict()[k]) for k, v in state.items())
    assert np.array_equal(_image(pool, plain), before)


def test_a_hypernetwork_for_another_width_is_refused_and_the_base_survives(
    pool: PipelinePool, make_request: MakeRequest, tmp_path: Path
) -> None:
    hyper = _hyper(tmp_path / "sd15.safetensors", 768)
    plain = make_request("plain", scheduler="DDIM", steps=2)
    before = _image(pool, plain)
    with pytest.raises(Unsupported, match="does not fit"):
        pool.generate([replace(plain, key="w", adapters=(AdapterRef(hyper, "hyper"),))], on_step=ignore,
                      is_canceled=never)
    assert np.array_equal(_image(pool, plain), before)
