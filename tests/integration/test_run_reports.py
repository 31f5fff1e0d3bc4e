"""Runner reports turned into task transitions and images (command/run_reports.py): one success with one set of
images however often it is reported, nothing after a cancel, retries until the final failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from command.app import CommandApp
from command.run_reports import ProducedImage, record_failed, record_produced, record_progress, record_started
from infra.settings import Settings
from tests.accounts import Account, new_account
from tests.catalog_accounts import client_of
from tests.catalog_objects import upload_image
from tests.image_support import eventually
from tests.system import System


@pytest.fixture(scope="module")
def commands(system: System) -> Iterator[CommandApp]:
    app = CommandApp(Settings(stream_name=system.stream, subject_prefix=system.prefix), system.nats_url)
    yield app
    app.close()


@pytest.fixture
def user(system: System) -> Account:
    return new_account(system, "runs")


def generate(system: System, who: Account, **fields: Any) -> dict[str, Any]:
    """A task as a runner gets it: requested, then released by the scheduler (runners only see released ones)."""
    with client_of(system, who) as client:
        answer = client.post("/api/images", json={"prompt": "a boat", **fields})
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["id"]
        assert eventually(lambda: (client.get(f"/api/tasks/{task_id}").json()["waiting_reason"] or "").startswith(
            "released"), timeout=30)
        return dict(answer.json())


def stored_pictures(system: System, who: Account, n: int) -> list[ProducedImage]:
    """Pictures really in the blob store (uploaded), described as a runner would describe its results."""
    made = []
    for seed in range(n):
        image = upload_image(system, who)
        key = image["url"].removeprefix("/api/blobs/")
        thumb = image["thumbnail_url"].removeprefix("/api/blobs/")
        made.append(ProducedImage(key, thumb, "image/png", image["width"], image["height"], 100 + seed, None))
    return made


def task_of(system: System, who: Account, task_id: int, status: str) -> dict[str, Any]:
    with client_of(system, who) as client:
        assert eventually(lambda: client.get(f"/api/tasks/{task_id}").json()["status"] == status, timeout=30), \
            client.get(f"/api/tasks/{task_id}").json()
        return dict(client.get(f"/api/tasks/{task_id}").json())


def test_a_success_reported_twice_makes_one_set_of_images_with_the_whole_recipe(
        system: System, commands: CommandApp, user: Account) -> None:
    task = generate(system, user, negative_prompt="fog", num_inference_steps=12, guidance_scale=5,
                    scheduler="DDIM", seed=100, batch_size=2, tags=["Harbour"], name="boats")
    pictures = stored_pictures(system, user, 2)
    assert record_started(commands, task["id"], None, "runner-1", attempt=1)
    assert record_progress(commands, task["id"], 10) == 0  # below the first milestone: not in the log
    assert record_progress(commands, task["id"], 55)
    assert record_produced(commands, task["id"], pictures, "whole")
    assert record_produced(commands, task["id"], pictures, "whole") == 0  # a redelivery's second report
    assert record_started(commands, task["id"], None, "runner-2", attempt=2) == 0
    done = task_of(system, user, task["id"], "success")
    assert done["progress"] == 100 and done["result"]["prompt_handling"] == "whole"
    image_ids = done["result"]["image_ids"]
    assert len(image_ids) == 2
    with client_of(system, user) as client:
        images = [client.get(f"/api/images/{i}").json() for i in image_ids]
        assert client.get("/api/images", params={"user": user.id, "q": "boats"}).json()["total"] == 2
        assert client.get("/api/account").json()["unfinished_tasks"] == 0
    assert [i["name"] for i in images] == ["boats #1", "boats #2"]
    for image, picture in zip(images, pictures, strict=True):
        assert {k: image[k] for k in ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale",
                                      "scheduler", "seed", "task_id", "tags", "model_id", "loras")} == {
            "prompt": "a boat", "negative_prompt": "fog", "num_inference_steps": 12, "guidance_scale": 5,
            "scheduler": "DDIM", "seed": picture.seed, "task_id": task["id"], "tags": ["Harbour"],
            "model_id": None, "loras": []}
        assert image["url"] == f"/api/blobs/{picture.blob_key}"


def test_after_a_cancel_no_report_changes_the_task(system: System, commands: CommandApp, user: Account) -> None:
    task = generate(system, user)
    record_started(commands, task["id"], None, "runner-1", 1)
    with client_of(system, user) as client:
        assert client.patch(f"/api/tasks/{task['id']}", json={"status": "canceled"}).status_code == 200
    assert record_progress(commands, task["id"], 80) == 0
    assert record_produced(commands, task["id"], stored_pictures(system, user, 1), "whole") == 0
    assert record_failed(commands, task["id"], "CUDA out of memory", final=True) == 0
    assert task_of(system, user, task["id"], "canceled")["result"] is None


def test_a_failed_attempt_waits_for_the_next_and_the_final_failure_says_why(system: System, commands: CommandApp,
                                                                           user: Account) -> None:
    task = generate(system, user)
    record_started(commands, task["id"], None, "runner-1", 1)
    assert record_failed(commands, task["id"], "the runner stopped", final=False)
    with client_of(system, user) as client:
        assert eventually(lambda: (client.get(f"/api/tasks/{task['id']}").json()["waiting_reason"] or "").startswith(
                          "retrying after a failed attempt: the runner stopped"), timeout=30)
    assert record_started(commands, task["id"], None, "runner-2", 2)
    reason = "gave up after 3 attempts: the pipeline crashed each time (the last: out of memory at 1024x1024)"
    assert record_failed(commands, task["id"], reason, final=True)
    failed = task_of(system, user, task["id"], "error")
    assert failed["error"] == reason and failed["attempt"] == 2 and failed["server_name"] == "runner-2"
    with client_of(system, user) as client:
        assert client.get("/api/account").json()["unfinished_tasks"] == 0
