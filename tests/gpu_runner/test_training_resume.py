"""Checkpoints and resume: a run stopped between steps and started again ends where an unbroken run ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as load_bytes

from gpu_runner.training import Hooks, MemoryCheckpoints, Progress, Stopped, train
from tests.gpu_runner.training_support import four_images, spec


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("model_type", "extra"), [
    ("lora", {}), ("ti", {}), ("hyper", {}), ("ckp", {"learning_rate": 1e-3}),
    ("ckp", {"learning_rate": 1e-3, "train_text_encoder": 1})])
def test_a_stopped_run_resumes_from_its_checkpoint_and_ends_equal(tiny_base: Path, model_type: str,
                                                                  extra: dict[str, float]) -> None:
    params = {"steps": 6, "checkpoint_every": 2, "learning_rate": 1e-2, "min_snr_gamma": 5.0, "noise_offset": 0.1,
              "warmup_steps": 2, **extra}
    whole = train(spec(tiny_base, model_type, **params), four_images())

    store, seen, yields = MemoryCheckpoints(), list[Progress](), [0]

    def count_yield() -> None:
        yields[0] += 1

    stop_at_three = Hooks(on_progress=seen.append, between_steps=count_yield, should_stop=lambda: len(seen) == 3)
    with pytest.raises(Stopped) as stopped:
        train(spec(tiny_base, model_type, **params), four_images(), hooks=stop_at_three, store=store)
    assert stopped.value.step == 3 and yields[0] == 3 and len(store.saved) == 1

    resumed = train(spec(tiny_base, model_type, **params), four_images(), hooks=Hooks(on_progress=seen.append),
                    store=store)
    assert resumed.run.resumed_from == 3
    assert [p.step for p in seen] == [1, 2, 3, 4, 5, 6]
    assert resumed.run.losses == pytest.approx(whole.run.losses[3:], abs=1e-5)
    ours, theirs = load_bytes(resumed.artefact), load_bytes(whole.artefact)
    assert ours.keys() == theirs.keys()
    assert max(float((ours[k] - theirs[k]).abs().max()) for k in ours) <= 1e-5


def test_another_dataset_does_not_resume_from_this_checkpoint(tiny_base: Path) -> None:
    store = MemoryCheckpoints()
    train(spec(tiny_base, "lora", steps=3, checkpoint_every=1), four_images(), store=store)
    other = train(spec(tiny_base, "lora", steps=3, checkpoint_every=1), four_images()[:3], store=store)
    assert other.run.resumed_from == 0 and len(store.saved) == 2
