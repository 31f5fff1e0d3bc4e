"""A runner SIGKILLed mid-task: its work item comes back after `ack_wait` to the next runner, and the task
succeeds exactly once (one TaskSucceeded, one set of images, no blob that no image uses). A task whose runner
vanishes on every delivery fails after `max_deliver` with the reason, from the server's advisory."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from infra.storage.local import LocalBlobStore
from tests.accounts import Account, new_account
from tests.catalog_accounts import client_of
from tests.image_support import eventually
from tests.system import System

LONG = {"prompt": "a slow boat", "width": 64, "height": 64, "num_inference_steps": 60, "scheduler": "DDIM"}


@pytest.fixture(scope="module")
def system(nats_server: Any, postgres_server: Any, servers_dir: Path) -> Iterator[System]:
    number = os.getpid() * 1000 + 991
    url = postgres_server.create_database(f"kill_{number}")
    sut = System(nats_server.url, url, f"K{number}", servers_dir / f"kill-{number}", runner=True,
                 extra_env={"AIDRAW_RUNNER_ACK_WAIT": "3", "AIDRAW_RUNNER_MAX_DELIVER": "2"}).start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def user(system: System) -> Account:
    return new_account(system, "kill")


def request(system: System, who: Account, **fields: Any) -> int:
    with client_of(system, who) as client:
        answer = client.post("/api/images", json={**LONG, **fields})
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])


def kill_runner_mid_task(system: System, task_id: int) -> None:
    """Wait for the task's progress messages (it is running), then SIGKILL the runner and start a fresh one."""
    async def wait_running() -> None:
        nc = await nats.connect(system.nats_url)
        sub = await nc.subscribe(f"{system.prefix}_changed.tasks.{task_id}")
        while json.loads((await sub.next_msg(timeout=120)).data)["step"] < 3:
            pass
        await nc.close()

    asyncio.run(wait_running())
    system.stop_role("runner", kill=True)
    system.start_role("runner")


def task(system: System, who: Account, task_id: int, statuses: tuple[str, ...]) -> dict[str, Any]:
    with client_of(system, who) as client:
        assert eventually(lambda: client.get(f"/api/tasks/{task_id}").json()["status"] in statuses, timeout=180), (
            client.get(f"/api/tasks/{task_id}").json(), system.log("runner"))
        return dict(client.get(f"/api/tasks/{task_id}").json())


def test_a_runner_killed_mid_task_the_task_succeeds_once_on_the_next(system: System, user: Account) -> None:
    task_id = request(system, user, batch_size=2)
    kill_runner_mid_task(system, task_id)
    done = task(system, user, task_id, ("success", "error"))
    assert done["status"] == "success" and done["attempt"] == 2, done
    with client_of(system, user) as client:
        events = client.get(f"/api/tasks/{task_id}/events").json()
        assert [e["type"] for e in events].count("TaskSucceeded") == 1
        assert [e["data"]["attempt"] for e in events if e["type"] == "TaskStarted"] == [1, 2]
        mine = client.get("/api/images", params={"user": user.id, "page_size": 100}).json()["list"]
    made = [i for i in mine if i["task_id"] == task_id]
    assert sorted(i["id"] for i in made) == sorted(done["result"]["image_ids"]) and len(made) == 2
    used = {i["url"].removeprefix("/api/blobs/") for i in made} | {
        i["thumbnail_url"].removeprefix("/api/blobs/") for i in made}
    stored = set(LocalBlobStore(system.data_dir / "blobs").keys_before(time.time() + 60))
    assert stored == used  # the killed attempt stored nothing; the rerun stored each blob once


def test_a_task_whose_runner_vanishes_every_time_fails_with_the_reason(system: System, user: Account) -> None:
    task_id = request(system, user)
    kill_runner_mid_task(system, task_id)  # delivery 1
    kill_runner_mid_task(system, task_id)  # delivery 2 = max_deliver: the server gives up, the runner reports it
    failed = task(system, user, task_id, ("error", "success"))
    assert failed["status"] == "error", failed
    assert "delivered 2 times and no runner finished it" in failed["error"]
    assert task(system, user, request(system, user, num_inference_steps=4), ("success",))["status"] == "success"
