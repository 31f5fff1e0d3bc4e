"""A runner SIGKILLed mid-training: the work item comes back after `ack_wait` to the next runner, which resumes
from the last checkpoint in the blob store (its first step is past the checkpoint, not step 1), and the task ends
with one RunTrained whose artefact is stored and equals an uninterrupted run's within 1e-5 (CPU). A runner asked
to stop (SIGTERM) writes a checkpoint where it is and gives the item back at once: the next runner goes on from
there."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load

from events.runs import RunProgressed, RunStarted, RunTrained
from gpu_runner.train_dataset import training_images
from gpu_runner.training import TrainSpec, train
from infra.urls import AllowList
from tests.training_runner import Listener, RunnerRig, striped_png, training

STEPS, EVERY = 16, 4
_rigs = itertools.count(1)


@pytest.fixture
def rig(nats_server: Any, servers_dir: Path) -> Iterator[RunnerRig]:
    number = f"{os.getpid()}_{next(_rigs)}"
    rig = RunnerRig(nats_server.url, f"TK{number}", servers_dir / f"train-kill-{number}",
                    env_extra={"AIDRAW_RUNNER_ACK_WAIT": "3", "AIDRAW_RUNNER_KINDS": "train",
                               "AIDRAW_RUNNER_TRAIN_SAMPLES": "0"}).setup().start()
    yield rig
    rig.stop()


def test_a_runner_killed_mid_training_is_resumed_from_its_checkpoint_by_the_next(rig: RunnerRig) -> None:
    images = [{"image_id": n, "blob_key": rig.blobs.put(striped_png(n), "image/png"), "caption": None}
              for n in range(4)]
    data = training(77, {"images": images}, steps=STEPS, checkpoint_every=EVERY)
    with Listener(rig) as heard:
        task_id = rig.submit(data)
        heard.until(lambda: any(m["step"] >= 2 * EVERY + 1 for m in heard.of("tasks", task_id)))
        rig.stop(kill=True)
        killed_at = heard.of("tasks", task_id)[-1]["step"]
        rig.start()
        reports = rig.wait_for(task_id, ("RunTrained", "RunFailed"), timeout=150)
        steps = heard.of("tasks", task_id)
    assert [r.attempt for r in reports if isinstance(r, RunStarted)] == [1, 2]
    trained = [r for r in reports if isinstance(r, RunTrained)]
    assert len(trained) == 1 and trained[0].attempt == 2 and trained[0].steps == STEPS
    assert rig.blobs.exists(trained[0].artefact_key)
    second_run = [m for m in steps if m["tick"] == 1][1:]  # the tick counts from 1 again in the new run
    assert second_run, steps
    resumed_at = second_run[0]["step"] - 1
    assert resumed_at > 0 and resumed_at % EVERY == 0 and resumed_at <= killed_at, (resumed_at, killed_at)
    assert "resuming from checkpoint" in rig.log()
    assert steps[-1]["step"] == STEPS
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runner (OMP_NUM_THREADS=1): a busy shared CPU makes more threads crawl
    try:
        unbroken = train(TrainSpec("lora", str(rig.data_dir / "models" / "tiny"), ("zqx",), data["training"]),
                         training_images(data["dataset"], rig.blobs, AllowList(), resolution=32, words=("zqx",)))
    finally:
        torch.set_num_threads(threads)
    resumed = load(rig.blobs.get(trained[0].artefact_key))
    expected = load(unbroken.artefact)
    assert resumed.keys() == expected.keys()
    assert all(torch.allclose(resumed[k], expected[k], atol=1e-5, rtol=0) for k in expected)


def test_a_runner_asked_to_stop_checkpoints_where_it_is_and_gives_the_training_back(rig: RunnerRig) -> None:
    images = [{"image_id": n, "blob_key": rig.blobs.put(striped_png(n), "image/png")} for n in range(4)]
    with Listener(rig) as heard:
        task_id = rig.submit(training(78, {"images": images}, steps=STEPS, checkpoint_every=1000))
        heard.until(lambda: any(m["step"] >= 3 for m in heard.of("tasks", task_id)))
        rig.stop()  # SIGTERM: no periodic checkpoint yet, so only the stop's own can resume it
        rig.start()
        reports = rig.wait_for(task_id, ("RunTrained", "RunFailed"), timeout=150)
        steps = heard.of("tasks", task_id)
    assert [type(r).__name__ for r in reports if not isinstance(r, RunProgressed)] == [
        "RunStarted", "RunStarted", "RunTrained"]
    restart = next(n for n, m in enumerate(steps) if n and m["tick"] == 1)
    assert steps[restart]["step"] == steps[restart - 1]["step"] + 1, steps  # on from the last step, no gap
