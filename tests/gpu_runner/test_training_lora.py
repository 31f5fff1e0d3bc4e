"""LoRA training on the tiny model: the loss falls, the file loads in both layouts, and the base survives."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_bytes

from gpu_runner.pipeline import AdapterRef, GenerationRequest, GenerationResult, PipelinePool
from gpu_runner.training import Trained, train
from gpu_runner.training.lora import to_kohya
from tests.gpu_runner.conftest import ignore, never, pixels
from tests.gpu_runner.training_support import four_images, spec

LOSS_FALL = 0.15  # docs/training.md: 60 steps at lr 1e-2 lower the fixed-noise loss by at least 15 %


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tiny_base: Path) -> Trained:
    return train(spec(tiny_base, "lora", steps=60, learning_rate=1e-2), four_images())


def _image(pool: PipelinePool, request: GenerationRequest) -> np.ndarray:
    [result] = pool.generate([request], on_step=ignore, is_canceled=never)
    assert isinstance(result, GenerationResult)
    return pixels(result.png)


def test_the_loss_on_four_images_falls(trained: Trained) -> None:
    assert trained.loss_after <= (1 - LOSS_FALL) * trained.loss_before
    assert len(trained.run.losses) == 60


def test_the_file_is_diffusers_layout_with_alpha_folded_in(trained: Trained) -> None:
    tensors = load_bytes(trained.artefact)
    assert len(tensors) == 2 * 4 * 2 * 4  # A and B, for q k v out, of attn1 and attn2, in 4 transformer blocks
    assert all(key.startswith("unet.") and (".lora_A." in key or ".lora_B." in key) for key in tensors)
    assert any(tensor.abs().max() > 0 for key, tensor in tensors.items() if ".lora_B." in key)


def test_the_lora_changes_the_image_in_both_layouts_and_the_base_comes_back(
    trained: Trained, pool: PipelinePool, make_request: Callable[..., GenerationRequest], tmp_path: Path
) -> None:
    diffusers_file, kohya_file = tmp_path / "mine.safetensors", tmp_path / "mine_kohya.safetensors"
    diffusers_file.write_bytes(trained.artefact)
    kohya_file.write_bytes(to_kohya(trained.artefact))
    plain = make_request("plain", prompt="zqx style 1", scheduler="DDIM", steps=3)
    before = _image(pool, plain)
    with_lora = _image(pool, replace(plain, key="d", adapters=(AdapterRef(diffusers_file, "lora"),)))
    with_kohya = _image(pool, replace(plain, key="k", adapters=(AdapterRef(kohya_file, "lora"),)))
    assert np.abs(with_lora - before).max() > 1
    assert np.abs(with_kohya - with_lora).max() <= 1
    assert np.array_equal(_image(pool, plain), before)


def test_kohya_keys_are_what_a1111_reads(trained: Trained) -> None:
    kohya = load_bytes(to_kohya(trained.artefact))
    name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    assert kohya[f"{name}.lora_down.weight"].shape == (4, 32)
    assert kohya[f"{name}.lora_up.weight"].shape == (32, 4)
    assert float(kohya[f"{name}.alpha"]) == 4.0
