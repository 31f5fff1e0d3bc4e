"""A runner SIGKILLed mid-task: its work item comes back after `ack_wait` to the next runner, and the task
succeeds exactly once (one TaskSucceeded, one set of images, no blob that no image uses). A task whose runner
vanishes on every delivery fails after `max_deliver` with the reason, from the server's advisory. A poison task
(its run fails on every delivery) fails after `max_deliver` with the reason, its work item kept in the stream,
while the tasks submitted around it succeed at their first attempt."""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from PIL import Image

from events.work import work_stream_name, work_subject
from infra.storage.local import LocalBlobStore
from tests.accounts import Account, new_account
from tests.catalog_accounts import client_of
from tests.catalog_objects import upload_image
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


def undecodable_png() -> bytes:
    """A PNG whose chunks all check out (so `verify()` passes) but whose pixel data is not a zlib stream: it
    fails only when decoded, in the middle of the run, as a blob damaged on disk would."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(out, "PNG")
    png, damaged, pos = out.getvalue(), bytearray(out.getvalue()[:8]), 8
    while pos < len(png):
        size = struct.unpack(">I", png[pos:pos + 4])[0]
        kind, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + size]
        data = bytes(size) if kind == b"IDAT" else data
        damaged += struct.pack(">I", size) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        pos += 12 + size
    return bytes(damaged)


def kept_work_item(system: System, task_id: int) -> dict[str, Any]:
    async def get() -> dict[str, Any]:
        nc = await nats.connect(system.nats_url)
        try:
            stored = await nc.jetstream().get_last_msg(work_stream_name(system.stream),
                                                       work_subject(system.prefix, "default", task_id))
            return dict(json.loads(stored.data or b"{}"))
        finally:
            await nc.close()

    return asyncio.run(get())


def test_a_poison_task_fails_after_max_deliver_with_the_reason_while_the_others_succeed(
        system: System, user: Account) -> None:
    source = upload_image(system, user)
    key = source["url"].removeprefix("/api/blobs/")
    (system.data_dir / "blobs" / key).write_bytes(undecodable_png())
    quick = {"num_inference_steps": 4}
    before = request(system, user, **quick)
    poison = request(system, user, from_image=source["id"], strength=0.5, **quick)
    after = [request(system, user, seed=n, **quick) for n in range(3)]

    failed = task(system, user, poison, ("error", "success"))
    assert failed["status"] == "error", failed
    assert "the runner failed" in failed["error"] and "broken data stream" in failed["error"], failed["error"]
    with client_of(system, user) as client:
        events = client.get(f"/api/tasks/{poison}/events").json()
    assert [e["data"]["attempt"] for e in events if e["type"] == "TaskStarted"] == [1, 2]  # max_deliver = 2
    assert [e["type"] for e in events].count("TaskFailed") == 1
    assert kept_work_item(system, poison)["task_id"] == poison  # not acked: kept for inspection

    for other in (before, *after):
        done = task(system, user, other, ("success", "error"))
        assert done["status"] == "success" and done["attempt"] == 1, done  # never failed beside the poison
