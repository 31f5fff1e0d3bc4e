"""Training tasks on a real `aidraw runner` (tiny model, CPU), driven through the work queue as the scheduler
releases them (tests/training_runner.py): the dataset from the blob store and loopback URLs with a caption
companion, progress on the task's and the model's subjects, milestones, the artefact and its cover in the blob
store, one RunTrained (a `ckp` fine-tune's cover made with it as the base); a bad dataset or an unknown model type
fails with the reason; a generation submitted during a training starts within a few training steps on the same
runner, and a canceled training stops."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from safetensors.torch import load

from events.runs import RunFailed, RunProduced, RunProgressed, RunStarted, RunTrained
from tests.training_runner import SMALL_GENERATION, Listener, RunnerRig, file_server, striped_png, training


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    with file_server({"/a.png": ("image/png", striped_png(2)), "/a.txt": ("text/plain", b"zqx, blue stripes"),
                      "/b.png": ("image/png", striped_png(3)), "/page": ("text/html", b"<p>")}) as url:
        yield url


@pytest.fixture(scope="module")
def rig(nats_server: Any, servers_dir: Path) -> Iterator[RunnerRig]:
    number = os.getpid() * 1000 + 311
    rig = RunnerRig(nats_server.url, f"TR{number}", servers_dir / f"train-runner-{number}").setup().start()
    yield rig
    rig.stop()


def dataset(rig: RunnerRig, files: str) -> dict[str, Any]:
    keys = [rig.blobs.put(striped_png(n), "image/png") for n in range(2)]
    return {"images": [{"image_id": 50 + n, "blob_key": key, "caption": f"zqx stripes {n}"}
                       for n, key in enumerate(keys)],
            "oss": [f"{files}/a.png", f"{files}/a.txt", f"{files}/b.png"]}


def test_a_training_task_stores_its_artefact_and_cover_and_reports_once(rig: RunnerRig, files: str) -> None:
    with Listener(rig) as heard:
        task_id = rig.submit(training(901, dataset(rig, files), steps=8, checkpoint_every=3))
        reports = rig.wait_for(task_id, ("RunTrained", "RunFailed"))
    assert [type(r) for r in reports if isinstance(r, RunStarted | RunTrained | RunFailed)] == [RunStarted, RunTrained]
    assert [r.progress for r in reports if isinstance(r, RunProgressed)] == [25, 50, 75]
    trained = next(r for r in reports if isinstance(r, RunTrained))
    assert (trained.model_id, trained.steps, trained.attempt) == (901, 8, 1)
    artefact = rig.blobs.get(trained.artefact_key)
    assert trained.artefact_key.endswith(".safetensors") and len(artefact) == trained.artefact_bytes
    assert any(".lora_A." in name for name in load(artefact))
    assert trained.loss_after < trained.loss_before
    cover = trained.cover
    assert cover is not None and (cover["width"], cover["height"]) == (32, 32)
    assert Image.open(io.BytesIO(rig.blobs.get(cover["blob_key"]))).format == "PNG"
    assert rig.blobs.exists(cover["thumbnail_key"])
    for collection, object_id in (("tasks", task_id), ("models", 901)):
        steps = heard.of(collection, object_id)
        assert [s["step"] for s in steps] == list(range(1, 9)) and {s["steps"] for s in steps} == {8}
        assert all(set(s["detail"]) == {"loss", "learning_rate"} for s in steps)
        previews = [s for s in steps if s["preview"]]
        assert previews and all(s["preview"].startswith("data:image/jpeg;base64,") for s in previews)
    blob_types = {key.rsplit(".", 1)[1] for key in rig.blobs.keys_before(1e12)}
    assert "bin" not in blob_types  # the checkpoints were discarded with the task


def test_a_checkpoint_fine_tune_gets_a_cover_made_with_it_as_the_base(rig: RunnerRig, files: str) -> None:
    task_id = rig.submit(training(907, dataset(rig, files), model_type="ckp", steps=2, learning_rate=1e-4))
    trained = [r for r in rig.wait_for(task_id, ("RunTrained", "RunFailed")) if isinstance(r, RunTrained)]
    assert len(trained) == 1 and trained[0].cover is not None, rig.reports(task_id)
    assert any(name.startswith("model.diffusion_model.") for name in load(rig.blobs.get(trained[0].artefact_key)))
    assert rig.blobs.exists(trained[0].cover["blob_key"])


def test_an_unusable_dataset_item_or_unknown_model_type_fails_the_task_naming_why(rig: RunnerRig, files: str) -> None:
    good = dataset(rig, files)
    missing = rig.submit(training(902, good | {"oss": [*good["oss"], f"{files}/gone.png"]}))
    html = rig.submit(training(903, good | {"oss": [*good["oss"], f"{files}/page"]}))
    few = rig.submit(training(904, {"images": good["images"][:1]}))
    unknown = rig.submit(training(905, good, model_type="sdxl-lora"))
    reasons = {}
    for task_id in (missing, html, few, unknown):
        failed = [r for r in rig.wait_for(task_id, ("RunFailed", "RunTrained")) if isinstance(r, RunFailed)]
        assert len(failed) == 1 and failed[0].final, failed
        reasons[task_id] = failed[0].reason
    assert f"{files}/gone.png answered 404" in reasons[missing]
    assert f"{files}/page is text/html" in reasons[html]
    assert "only 1 usable images, at least 4 needed" in reasons[few]
    assert reasons[unknown] == "training parameters: type: must be one of lora, ckp, hyper, ti"


def test_a_generation_during_training_starts_within_a_few_steps_and_a_cancel_stops_training(
        rig: RunnerRig, files: str) -> None:
    with Listener(rig) as heard:
        train_id = rig.submit(training(906, dataset(rig, files), steps=2000, checkpoint_every=1000))
        heard.until(lambda: len(heard.of("tasks", train_id)) >= 3)
        generation = rig.submit(SMALL_GENERATION)
        submitted_at = heard.of("tasks", train_id)[-1]["step"]
        heard.until(lambda: bool(heard.of("tasks", generation)))
        started_at = heard.of("tasks", train_id)[-1]["step"]
        assert started_at - submitted_at <= 3, (submitted_at, started_at)
        produced = rig.wait_for(generation, ("RunProduced", "RunFailed"))
        assert any(isinstance(r, RunProduced) for r in produced), produced
        heard.until(lambda: heard.of("tasks", train_id)[-1]["step"] > started_at + 2)  # training goes on
        rig.cancel(train_id)
        heard.until(lambda: rig.work_left() == 0, 30)  # the canceled item is acked: nothing comes back
        stopped_at = heard.of("tasks", train_id)[-1]["step"]
    assert stopped_at < 2000
    assert not any(isinstance(r, RunTrained | RunFailed) for r in rig.reports(train_id))
