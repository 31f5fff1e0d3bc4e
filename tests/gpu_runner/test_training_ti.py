"""Textual inversion on the tiny model: only the new rows train, the token changes the image, then is forgotten."""

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
from tests.gpu_runner.conftest import ignore, never, pixels
from tests.gpu_runner.training_support import four_images, spec

# docs/training.md: the tiny random UNet barely listens to its text, so the fixed-noise loss falls only a little
LOSS_FALL = 0.001


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tiny_base: Path) -> Trained:
    return train(spec(tiny_base, "ti", steps=40, learning_rate=1e-1, num_vectors=2), four_images())


def _image(pool: PipelinePool, request: GenerationRequest) -> np.ndarray:
    [result] = pool.generate([request], on_step=ignore, is_canceled=never)
    assert isinstance(result, GenerationResult)
    return pixels(result.png)


def test_the_loss_falls_and_the_embedding_has_one_row_per_vector(trained: Trained) -> None:
    assert trained.loss_after <= (1 - LOSS_FALL) * trained.loss_before
    [(name, rows)] = load_bytes(trained.artefact).items()
    assert name == "emb_params" and rows.shape == (2, 32)


def test_the_trigger_word_changes_the_image_and_is_forgotten_after(
    trained: Trained, pool: PipelinePool, make_request: Callable[..., GenerationRequest], tmp_path: Path
) -> None:
    path = tmp_path / "zqx.safetensors"
    path.write_bytes(trained.artefact)
    adapter = (AdapterRef(path, "ti", token="zqx"),)
    said = make_request("said", prompt="zqx style 2", scheduler="DDIM", steps=3)
    plain_said = _image(pool, said)
    assert np.abs(_image(pool, replace(said, key="s2", adapters=adapter)) - plain_said).max() > 1
    assert np.array_equal(_image(pool, said), plain_said)
