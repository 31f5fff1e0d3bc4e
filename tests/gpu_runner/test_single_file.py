"""A base as one checkpoint in the original SD layout (what users upload and A1111 writes), loaded offline with a
local config folder: the same weights give the same pixels as the diffusers folder, and the pool keeps it like
any other base."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gpu_runner.pipeline import GenerationRequest, GenerationResult, PipelinePool
from tests.gpu_runner.checkpoint_support import write_checkpoint
from tests.gpu_runner.conftest import ignore, never, pixels


@pytest.fixture(scope="module")
def checkpoint(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("ckp") / "tiny-single.safetensors"
    write_checkpoint(tiny_base, target)
    return target


def test_a_single_file_gives_the_pixels_of_its_folder(
    pool: PipelinePool, make_request: Callable[..., GenerationRequest], tiny_base: Path, checkpoint: Path
) -> None:
    folder = make_request("folder", scheduler="DDIM", steps=3)
    single = make_request("single", scheduler="DDIM", steps=3, base=checkpoint, base_config=tiny_base,
                          base_name="single")
    results = pool.generate([folder, single], on_step=ignore, is_canceled=never)
    assert all(isinstance(r, GenerationResult) for r in results)
    first, second = (pixels(r.png) for r in results if isinstance(r, GenerationResult))
    assert np.array_equal(first, second)
    assert checkpoint in pool.loaded_bases and tiny_base in pool.loaded_bases
