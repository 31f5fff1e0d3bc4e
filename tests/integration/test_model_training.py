"""The training lifecycle over HTTP, on the real API and projector processes (docs/training.md "The lifecycle"):
the request and its 422s, the lock, a cancel from either side, the dataset resolved with the owner's eyes, one task
per request however often it is delivered, and the success a runner reports (RunTrained, appended as a runner
appends it and applied by the run-report loop), no GPU involved."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import nats
import psycopg
import pytest

from command.app import CommandApp
from command.base_models import register_base
from command.training import start_training
from events.base import Changed
from events.runs import RunFailed, RunProgressed, RunStarted, RunTrained
from events.store.aio import AsyncJetStreamStore
from gpu_runner.reports import ReportLog
from infra.settings import Settings
from tests.accounts import new_account
from tests.catalog_accounts import People, Person, assert_problem, client_of
from tests.catalog_objects import upload_image
from tests.image_support import eventually
from tests.model_files import checkpoint, lora
from tests.system import System

OSS = "https://cdn.example.com/train/1.png"


@pytest.fixture(scope="module")
def commands(system: System) -> Iterator[CommandApp]:
    app = CommandApp(Settings(stream_name=system.stream, subject_prefix=system.prefix), system.nats_url)
    yield app
    app.close()


def trainable(system: System, who: Person, images: list[int] | None = None, **fields: Any) -> dict[str, Any]:
    """A model of `who` with four of their own private images (or the `images` given)."""
    if images is None:
        images = [upload_image(system, who, public=False)["id"] for _ in range(4)]
    body = {"name": f"m-{uuid.uuid4().hex[:8]}", "type": "lora", "base_model": "SD1.5", "trigger_words": "zqx",
            "data": {"images": images}, **fields}
    with client_of(system, who) as client:
        answer = client.post("/api/models", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def patch(system: System, who: Person, model_id: int, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    with client_of(system, who) as client:
        answer = client.patch(f"/api/models/{model_id}", json=body)
        assert answer.status_code == status, answer.text
        return dict(answer.json())


def model_when(system: System, who: Person | None, model_id: int, status: str) -> dict[str, Any]:
    """The model once it shows `status` (the process manager and the report loop act on their own)."""
    with client_of(system, who) as client:
        assert eventually(lambda: client.get(f"/api/models/{model_id}").json()["status"] == status, timeout=30), \
            client.get(f"/api/models/{model_id}").json()
        return dict(client.get(f"/api/models/{model_id}").json())


def get(system: System, who: Person | None, path: str) -> dict[str, Any]:
    with client_of(system, who) as client:
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def trail(system: System, who: Person, path: str) -> list[str]:
    with client_of(system, who) as client:
        return [event["type"] for event in client.get(f"{path}/events").json()]


def train_tasks(system: System, who: Person, model_id: int) -> list[dict[str, Any]]:
    with client_of(system, who) as client:
        tasks = client.get("/api/tasks", params={"user": who.id, "pageSize": 100}).json()["list"]
        return [t for t in tasks if t["type"] == "train" and t["data"].get("model_id") == model_id]


def queued(system: System, who: Person, training: dict[str, Any] | None = None, **fields: Any) -> tuple[dict, dict]:
    """A model asked to train, once its task waits: (model, task)."""
    model = trainable(system, who, **fields)
    asked = patch(system, who, model["id"], {"status": "ready", **({"training": training} if training else {})})
    assert asked["status"] == "ready"
    waiting = model_when(system, who, model["id"], "waiting")
    with client_of(system, who) as client:  # the tasks read model is projected apart from the models one
        assert eventually(lambda: client.get(f"/api/tasks/{waiting['task_id']}").status_code == 200, timeout=30)
    return waiting, get(system, who, f"/api/tasks/{waiting['task_id']}")


def report_as_a_runner(system: System, *reports: tuple[type[Changed], dict[str, Any]]) -> None:
    """Append reports to a runner's own `server` aggregate, exactly as gpu_runner's ReportLog does."""
    async def append() -> None:
        nc = await nats.connect(system.nats_url)
        try:
            log = ReportLog(AsyncJetStreamStore(nc, system.stream, system.prefix))
            await log.register("test-runner", "cpu", ["train-default"], "test")
            for kind, fields in reports:
                await log.report(kind, **fields)
        finally:
            await nc.close()

    asyncio.run(append())


def test_training_parameters_are_kept_on_create_and_patch_and_bad_ones_are_named(system: System,
                                                                                people: People) -> None:
    model = trainable(system, people.alice, training={"rank": 8.0, "steps": 100})
    assert model["training"] == {"rank": 8, "steps": 100} and model["status"] == "initial"
    with client_of(system, people.alice) as client:
        bad = assert_problem(client.post("/api/models", json={
            "name": "x", "type": "lora", "base_model": "SD1.5", "data": {"oss": [OSS]},
            "training": {"rank": 0, "num_vectors": 2, "resolution": 500, "steps": 10}}), 422)
        assert {tuple(e["loc"]) for e in bad["errors"]} == {
            ("body", "training", "rank"), ("body", "training", "num_vectors"), ("body", "training", "resolution")}
        for body in ({"training": {"learning_rate": 1.0}}, {"training": {"rank": True}}, {"training": None},
                     {"status": "success"}, {"status": "running"}, {"status": "canceled", "name": "y"},
                     {"training": {"learning_rate": 1.0}, "status": "ready"}, {"error": "x"}, {"task_id": 1}):
            assert_problem(client.patch(f"/api/models/{model['id']}", json=body), 422)
        changed = client.patch(f"/api/models/{model['id']}", json={"training": {"learning_rate": 3e-4}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["training"] == {"learning_rate": 3e-4}  # replaced as a whole
        assert client.get(f"/api/models/{model['id']}").json()["training"] == {"learning_rate": 3e-4}
    assert trail(system, people.alice, f"/api/models/{model['id']}") == [
        "ModelCreated", "ModelTrainingChanged", "ModelTrainingChanged"]


def test_a_request_becomes_one_train_task_with_the_dataset_resolved_and_released_to_train_runners(
        system: System, people: People) -> None:
    model, task = queued(system, people.alice, training={"steps": 50, "resolution": 256})
    assert (model["progress"], model["error"]) == (0, None)
    assert (task["type"], task["status"], task["user_id"]) == ("train", "waiting", people.alice.id)
    data = task["data"]
    assert {k: data[k] for k in ("kind", "model_id", "model_type", "base_model", "base_capability",
                                 "trigger_words", "public")} == {
        "kind": "train", "model_id": model["id"], "model_type": "lora", "base_model": "SD1.5",
        "base_capability": "default", "trigger_words": "zqx", "public": False}
    assert data["training"]["steps"] == 50 and data["training"]["rank"] == 4  # the defaults fill the rest
    images = data["dataset"]["images"]
    assert [i["image_id"] for i in images] == model["dataset"]["images"]
    assert all(i["blob_key"] and i["caption"] == "zqx" for i in images)  # uploads have no prompt
    with client_of(system, people.alice) as client:
        assert eventually(lambda: (client.get(f"/api/tasks/{task['id']}").json()["waiting_reason"] or "")
                          .startswith("released"), timeout=30)
    assert trail(system, people.alice, f"/api/models/{model['id']}")[-2:] == [
        "ModelTrainingRequested", "ModelTrainingQueued"]
    assert trail(system, people.alice, f"/api/tasks/{task['id']}")[:4] == [
        "TaskCreated", "TaskWaiting", "TaskEnqueued", "TaskReleased"]
    assert len(train_tasks(system, people.alice, model["id"])) == 1


def test_while_training_the_model_answers_409_to_changes_and_deletes_saying_why(system: System,
                                                                              people: People) -> None:
    model, _ = queued(system, people.alice)
    with client_of(system, people.alice) as client:
        for answer in (client.patch(f"/api/models/{model['id']}", json={"name": "other"}),
                       client.patch(f"/api/models/{model['id']}", json={"status": "ready"}),
                       client.patch(f"/api/models/{model['id']}", json={"training": {"steps": 5}}),
                       client.delete(f"/api/models/{model['id']}")):
            assert "training" in assert_problem(answer, 409)["detail"]
    with client_of(system, people.admin) as admin:
        assert_problem(admin.delete(f"/api/models/{model['id']}"), 409)
    assert get(system, people.alice, f"/api/models/{model['id']}")["name"] == model["name"]


def test_only_the_owner_or_an_admin_asks_for_or_cancels_training(system: System, people: People) -> None:
    private = trainable(system, people.alice)
    public = trainable(system, people.alice, public=True)
    with client_of(system, people.bob) as bob:
        for body in ({"status": "ready"}, {"status": "canceled"}):
            assert_problem(bob.patch(f"/api/models/{private['id']}", json=body), 404)
            assert_problem(bob.patch(f"/api/models/{public['id']}", json=body), 403)
    with client_of(system, None) as anonymous:
        assert_problem(anonymous.patch(f"/api/models/{public['id']}", json={"status": "ready"}), 401)
    assert patch(system, people.alice, public["id"], {"status": "ready"})["status"] == "ready"
    assert patch(system, people.admin, public["id"], {"status": "canceled"})["status"] == "initial"
    assert get(system, None, f"/api/models/{public['id']}")["task_id"] is None  # tasks are the owner's


@pytest.mark.parametrize("side", ["model", "task"])
def test_a_cancel_on_either_side_cancels_the_task_and_puts_back_the_earlier_status(system: System, people: People,
                                                                                   side: str) -> None:
    model, task = queued(system, people.alice)
    with client_of(system, people.alice) as client:
        if side == "model":
            answer = client.patch(f"/api/models/{model['id']}", json={"status": "canceled"})
            assert answer.status_code == 200 and answer.json()["status"] == "initial", answer.text
        else:
            assert client.patch(f"/api/tasks/{task['id']}", json={"status": "canceled"}).status_code == 200
        assert client.get(f"/api/tasks/{task['id']}").json()["status"] == "canceled"
        assert client.get(f"/api/models/{model['id']}").json()["status"] == "initial"
        assert_problem(client.patch(f"/api/models/{model['id']}", json={"status": "canceled"}), 409)
        assert client.patch(f"/api/models/{model['id']}", json={"name": "unlocked"}).status_code == 200
    assert trail(system, people.alice, f"/api/models/{model['id']}")[-2:] == ["ModelTrainingCanceled",
                                                                              "ModelRenamed"]
    assert trail(system, people.alice, f"/api/tasks/{task['id']}")[-1] == "TaskCanceled"


def test_a_dataset_naming_another_users_private_image_fails_naming_it_with_no_task(system: System,
                                                                                  people: People) -> None:
    shared = upload_image(system, people.bob, public=True)
    own = [upload_image(system, people.alice, public=False)["id"] for _ in range(3)]
    model = trainable(system, people.alice, images=[*own, shared["id"]])
    with client_of(system, people.bob) as bob:
        assert bob.patch(f"/api/images/{shared['id']}", json={"public": False}).status_code == 200
    patch(system, people.alice, model["id"], {"status": "ready"})
    failed = model_when(system, people.alice, model["id"], "error")
    assert f"Image {shared['id']}" in failed["error"] and "private to another user" in failed["error"]
    assert failed["task_id"] is None and train_tasks(system, people.alice, model["id"]) == []
    # the owner can act on it: a retry from error is allowed (and fails the same way while the image is hidden)
    assert patch(system, people.alice, model["id"], {"status": "ready"})["status"] == "ready"
    assert "private" in model_when(system, people.alice, model["id"], "error")["error"]


def test_too_few_usable_items_is_an_error_before_any_gpu_time(system: System, people: People) -> None:
    model = trainable(system, people.alice, images=[], data={  # a caption companion is not an item
        "images": [upload_image(system, people.alice)["id"]], "oss": [OSS, OSS.replace(".png", ".txt"),
                                                                      "https://cdn.example.com/train/2.TXT"]})
    patch(system, people.alice, model["id"], {"status": "ready"})
    failed = model_when(system, people.alice, model["id"], "error")
    assert "2 usable item(s)" in failed["error"] and "at least 4" in failed["error"]
    assert train_tasks(system, people.alice, model["id"]) == []


def test_a_redelivered_request_makes_no_second_task(system: System, people: People, commands: CommandApp) -> None:
    model, task = queued(system, people.alice)
    with psycopg.connect(system.database_url, autocommit=True) as conn:  # the request queued once more
        conn.execute("INSERT INTO public.training_requests (model_id, sequence) VALUES (%s, %s)",
                     (model["id"], 10**12))
        assert eventually(lambda: conn.execute("SELECT count(*) FROM public.training_requests WHERE model_id = %s",
                                               (model["id"],)).fetchone() == (0,), timeout=30)
    assert start_training(commands, model["id"]) == 0  # the command itself, called again
    assert [t["id"] for t in train_tasks(system, people.alice, model["id"])] == [task["id"]]
    assert get(system, people.alice, f"/api/models/{model['id']}")["task_id"] == task["id"]


def test_a_runners_success_report_makes_the_model_usable_with_a_cover_of_its_visibility(
        system: System, people: People) -> None:
    people = People(new_account(system, "trainer"), people.bob, people.admin)  # no other unfinished tasks
    model, task = queued(system, people.alice, public=True)
    picture = upload_image(system, people.alice, public=False)
    cover = {"blob_key": picture["url"].removeprefix("/api/blobs/"),
             "thumbnail_key": picture["thumbnail_url"].removeprefix("/api/blobs/"), "content_type": "image/png",
             "width": picture["width"], "height": picture["height"], "seed": 7, "descriptor": None}
    artefact = "ab/cd/" + "e" * 64 + ".safetensors"
    report_as_a_runner(
        system, (RunStarted, {"task_id": task["id"], "attempt": 1, "server_name": "test-runner"}),
        (RunProgressed, {"task_id": task["id"], "attempt": 1, "progress": 60}))
    running = model_when(system, people.alice, model["id"], "running")
    with client_of(system, people.alice) as client:
        assert eventually(lambda: client.get(f"/api/models/{model['id']}").json()["progress"] == 50, timeout=30)
    assert running["model_path"] is None
    report_as_a_runner(system, (RunTrained, {
        "task_id": task["id"], "attempt": 1, "model_id": model["id"], "artefact_key": artefact,
        "artefact_bytes": 1234, "loss_before": 1.0, "loss_after": 0.8, "steps": 1000, "cover": cover}))
    done = model_when(system, people.alice, model["id"], "success")
    assert done["model_path"] and done["progress"] == 100 and done["image_id"]  # the key, or where it downloads
    with client_of(system, people.alice) as client:
        assert eventually(lambda: client.get(f"/api/tasks/{task['id']}").json()["status"] == "success", timeout=30)
    finished = get(system, people.alice, f"/api/tasks/{task['id']}")
    assert {k: finished["result"][k] for k in ("model_path", "image_ids")} == {
        "model_path": f"/api/models/{model['id']}/file", "image_ids": [done["image_id"]]}
    assert "prompt_handling" not in finished["result"]
    with client_of(system, None) as anonymous:  # public, as the model is
        assert eventually(lambda: anonymous.get(f"/api/images/{done['image_id']}").status_code == 200, timeout=30)
    image = get(system, None, f"/api/images/{done['image_id']}")
    assert (image["user_id"], image["public"], image["prompt"], image["task_id"]) == (
        people.alice.id, True, "zqx", task["id"])
    assert image["loras"] == [{"model_id": model["id"], "weight": 1.0}]
    assert get(system, None, f"/api/models/{model['id']}")["image"] == image["url"]
    assert trail(system, people.alice, f"/api/models/{model['id']}")[-6:] == [
        "ModelTrainingRequested", "ModelTrainingQueued", "ModelTrainingStarted", "ModelTrainingProgressed",
        "ModelArtefactStored", "ModelCoverChosen"]
    assert trail(system, people.alice, f"/api/tasks/{task['id']}")[-3:] == [
        "TaskStarted", "TaskProgressed", "TaskSucceeded"]
    with client_of(system, people.alice) as client:
        assert client.get("/api/account").json()["unfinished_tasks"] == 0

    # a retrain keeps the file until it succeeds; canceled from the task's side, the model is success again
    patch(system, people.alice, model["id"], {"status": "ready"})
    again = model_when(system, people.alice, model["id"], "waiting")
    assert again["model_path"] == done["model_path"] and again["task_id"] != task["id"]
    with client_of(system, people.alice) as client:
        assert client.patch(f"/api/tasks/{again['task_id']}", json={"status": "canceled"}).status_code == 200
    back = get(system, people.alice, f"/api/models/{model['id']}")
    assert (back["status"], back["model_path"], back["progress"]) == ("success", done["model_path"], 100)


def test_a_failed_attempt_waits_again_and_the_final_failure_is_the_models_error(system: System,
                                                                                people: People) -> None:
    model, task = queued(system, people.alice)
    start = {"task_id": task["id"], "server_name": "test-runner"}
    report_as_a_runner(system, (RunStarted, {**start, "attempt": 1}), (RunFailed, {
        "task_id": task["id"], "attempt": 1, "reason": "the runner stopped", "final": False}))
    model_when(system, people.alice, model["id"], "waiting")
    reason = "fewer than 4 usable items: https://cdn.example.com/x.png did not answer"
    report_as_a_runner(system, (RunStarted, {**start, "attempt": 2}), (RunFailed, {
        "task_id": task["id"], "attempt": 2, "reason": reason, "final": True}))
    failed = model_when(system, people.alice, model["id"], "error")
    assert (failed["error"], failed["progress"], failed["task_id"]) == (reason, 0, task["id"])
    with client_of(system, people.alice) as client:
        assert eventually(lambda: client.get(f"/api/tasks/{task['id']}").json()["error"] == reason, timeout=30)
    assert trail(system, people.alice, f"/api/models/{model['id']}")[-4:] == [
        "ModelTrainingStarted", "ModelTrainingQueued", "ModelTrainingStarted", "ModelTrainingFailed"]
    assert patch(system, people.alice, model["id"], {"status": "ready"})["status"] == "ready"  # a retry


def test_concurrent_starts_of_one_request_make_one_task(system: System, people: People,
                                                        commands: CommandApp) -> None:
    model = trainable(system, people.alice)
    patch(system, people.alice, model["id"], {"status": "ready"})
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # and the process manager's own worker beside them
        written = list(pool.map(lambda _: start_training(commands, model["id"]), range(4)))
    assert sum(1 for seq in written if seq) <= 1
    waiting = model_when(system, people.alice, model["id"], "waiting")
    assert eventually(lambda: train_tasks(system, people.alice, model["id"]) != [], timeout=30)
    assert [t["id"] for t in train_tasks(system, people.alice, model["id"])] == [waiting["task_id"]]


def test_the_models_and_tasks_read_models_rebuild_identically_from_the_training_events(system: System,
                                                                                        people: People) -> None:
    queued(system, people.bob, training={"steps": 10})  # besides everything the tests above left in the log
    for projection in ("models", "tasks"):
        rebuilt = subprocess.run([sys.executable, "-m", "aidraw.cli", "rebuild", projection], env=system.env,
                                 capture_output=True, text=True, timeout=120, check=False)
        assert rebuilt.returncode == 0 and "identical" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr


def test_an_uploaded_model_with_no_training_data_cannot_be_trained(system: System, people: People) -> None:
    with client_of(system, people.alice) as client:
        made = client.post("/api/models", data={"type": "lora", "base_model": "SD1.5", "name": "brought"},
                           files={"file": ("mine.safetensors", lora(), "application/octet-stream")})
        assert made.status_code == 201, made.text
        model = made.json()
        body = assert_problem(client.patch(f"/api/models/{model['id']}", json={"status": "ready"}), 422)
        assert "no training data" in body["detail"]
        assert client.get(f"/api/models/{model['id']}").json()["status"] == "success"


def test_the_training_runs_on_the_registered_base_its_source_names(system: System, people: People,
                                                                   commands: CommandApp) -> None:
    base, _ = register_base(commands, name=f"sd15-{uuid.uuid4().hex[:6]}", capability="sd15", base_model="SD1.5")
    _, task = queued(system, people.alice, source=base.number)
    assert (task["data"]["base_capability"], task["data"]["kind"]) == ("sd15", "train")
    with client_of(system, people.alice) as client:
        mine = client.post("/api/models", data={"type": "ckp", "base_model": "SD1.5", "name": "my base"},
                           files={"file": ("mine.safetensors", checkpoint(), "application/octet-stream")})
        assert mine.status_code == 201, mine.text
    on_mine = trainable(system, people.alice, source=mine.json()["id"])
    patch(system, people.alice, on_mine["id"], {"status": "ready"})
    refused = model_when(system, people.alice, on_mine["id"], "error")
    assert "user's checkpoint" in refused["error"] and refused["task_id"] is None
