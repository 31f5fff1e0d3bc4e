"""A runner SIGKILLed mid-training: the work item comes back after `ack_wait` to the next runner, which resumes
from the last checkpoint in the blob store (its first step is past the checkpoint, not step 1), and the task ends
with one RunTrained whose artefact is stored and equals an uninterrupted run's within 1e-5 (CPU)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load

from events.runs import RunStarted, RunTrained
from gpu_runner.train_dataset import training_images
from gpu_runner.training import TrainSpec, train
from infra.urls import AllowList
from tests.training_runner import Listener, RunnerRig, striped_png, training

STEPS, EVERY = 16, 4


@pytest.fixture
def rig(nats_server: Any, servers_dir: Path) -> Iterator[RunnerRig]:
    number = os.getpid() * 1000 + 313
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
