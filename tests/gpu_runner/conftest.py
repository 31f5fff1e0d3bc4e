"""The tiny SD-shaped model and a pool on it, built once per test session (a second or two on a CPU)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpu_runner.pipeline import GenerationRequest, PipelinePool, StepReport
from gpu_runner.tiny_model import ensure_tiny_model

SIZE = 32  # pixels: a 4x4 latent keeps every test in a second or two


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def pool() -> PipelinePool:
    return PipelinePool(memory_budget_bytes=2**30, preview_every_steps=0)


@pytest.fixture
def make_request(tiny_base: Path) -> Callable[..., GenerationRequest]:
    def make(key: str = "a", **changes: object) -> GenerationRequest:
        request = GenerationRequest(
            key=key, prompt="a red cat", negative_prompt="blurry", steps=4, guidance_scale=7.0,
            scheduler="K_EULER", seed=1, width=SIZE, height=SIZE, base=tiny_base, base_name="tiny",
        )
        return replace(request, **changes)  # type: ignore[arg-type]

    return make


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def never(_key: str) -> bool:
    return False


def ignore(_report: StepReport) -> None:
    return None
