"""The live feed through the real runner (the tiny model on CPU): a socket opened on a task right after its
`POST /api/images` sees its whole life (waiting, running with progress and JPEG previews, success with the
result, close 1000); a cancel while watching ends it with `canceled` and 1000, and nothing is stored; a socket on
a finished task gets the final state and closes; `WS /api/tasks` sees every one of the caller's tasks."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from events.work import work_stream_name, work_subject
from infra.storage.local import LocalBlobStore
from tests.accounts import Account, new_account
from tests.catalog_accounts import client_of
from tests.image_support import eventually
from tests.live_support import open_socket, receive
from tests.system import System

RECIPE = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "scheduler": "DDIM"}
ORDER = {"waiting": 0, "running": 1, "success": 2, "error": 2, "canceled": 2}


@pytest.fixture(scope="module")
def system(nats_server: Any, postgres_server: Any, servers_dir: Path) -> Iterator[System]:
    number = os.getpid() * 1000 + 913
    url = postgres_server.create_database(f"liverun_{number}")
    sut = System(nats_server.url, url, f"L{number}", servers_dir / f"liverun-{number}", runner=True).start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def user(system: System) -> Account:
    return new_account(system, "watcher")


def submit(system: System, who: Account, steps: int) -> int:
    with client_of(system, who) as client:
        answer = client.post("/api/images", json={**RECIPE, "num_inference_steps": steps})
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])


def until_closed(ws: ClientConnection, timeout: float = 120) -> tuple[list[dict[str, Any]], int]:
    """Every message until the server closes, and its close code."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            got.append(receive(ws, timeout=max(0.1, deadline - time.monotonic())))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return got, closed.rcvd.code


def until_status(ws: ClientConnection, task_id: int, statuses: set[str], timeout: float = 120) -> list[dict[str, Any]]:
    """Messages of `WS /api/tasks` about one task, up to the first in one of `statuses`."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not got or got[-1]["status"] not in statuses:
        message = receive(ws, timeout=max(0.1, deadline - time.monotonic()))
        if message["id"] == task_id:
            got.append(message)
    return got


def assert_in_order(messages: list[dict[str, Any]]) -> None:
    """Statuses only move forward, `sequence` never goes back, and (sequence, tick) always grows."""
    assert [ORDER[m["status"]] for m in messages] == sorted(ORDER[m["status"]] for m in messages), messages
    keys = [(m["sequence"], m.get("tick", 0)) for m in messages]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), keys


def work_item_kept(system: System, task_id: int) -> bool:
    async def look() -> bool:
        nc = await nats.connect(system.nats_url)
        try:
            await nc.jetstream().get_last_msg(work_stream_name(system.stream),
                                              work_subject(system.prefix, "default", task_id))
            return True
        except NotFoundError:
            return False
        finally:
            await nc.close()

    return asyncio.run(look())


def stored_keys(system: System) -> set[str]:
    return set(LocalBlobStore(system.data_dir / "blobs").keys_before(time.time() + 60))


def test_a_socket_opened_right_after_the_post_sees_the_whole_life_then_1000(system: System, user: Account) -> None:
    with open_socket(system, "/api/tasks", user.token, max_queue=None) as mine:
        task_id = submit(system, user, steps=40)
        with open_socket(system, f"/api/tasks/{task_id}", user.token, max_queue=None) as ws:
            messages, code = until_closed(ws)
        listed = until_status(mine, task_id, {"success", "error"})
    states = [m for m in messages if "tick" not in m]
    steps = [m for m in messages if "tick" in m]
    assert code == 1000
    assert states[0]["status"] == "waiting" and states[-1]["status"] == "success", states
    assert "running" in [m["status"] for m in states] and all(m["status"] == "running" for m in steps), messages
    assert_in_order(messages)
    assert len(steps) >= 3 and [m["data"]["step"] for m in steps] == sorted(m["data"]["step"] for m in steps)
    assert all(m["data"]["steps"] == 40 and m["progress"] == round(100 * m["data"]["step"] / 40) for m in steps)
    previews = [m["data"]["preview"] for m in steps if "preview" in m["data"]]
    assert previews and all(p.startswith("data:image/jpeg;base64,") for p in previews)
    assert base64.b64decode(previews[0].split(",", 1)[1])[:3] == b"\xff\xd8\xff"  # a JPEG
    assert len(previews[0]) < 20_000  # a small preview: a few KB

    final = states[-1]
    with client_of(system, user) as client:
        assert final["data"] == client.get(f"/api/tasks/{task_id}").json()
        images = [client.get(f"/api/images/{i}").json() for i in final["data"]["result"]["image_ids"]]
    assert len(images) == 1 and images[0]["task_id"] == task_id
    assert final["data"]["result"]["images"] == [
        {"id": images[0]["id"], "url": images[0]["url"], "thumbnail_url": images[0]["thumbnail_url"]}]

    assert listed[-1]["data"] == final["data"] and "running" in [m["status"] for m in listed]
    assert_in_order(listed)

    with open_socket(system, f"/api/tasks/{task_id}", user.token) as ws:  # a finished task: its end, then 1000
        again, code = until_closed(ws, timeout=10)
    assert code == 1000 and [m["status"] for m in again] == ["success"] and again[0]["data"] == final["data"]


def test_a_cancel_while_watching_sends_canceled_then_1000_and_stores_nothing(system: System, user: Account) -> None:
    before = stored_keys(system)
    with open_socket(system, "/api/tasks", user.token, max_queue=None) as mine:
        task_id = submit(system, user, steps=400)
        with open_socket(system, f"/api/tasks/{task_id}", user.token, max_queue=None) as ws:
            seen: list[dict[str, Any]] = []
            while not (seen and "tick" in seen[-1] and seen[-1]["data"]["step"] >= 2):
                seen.append(receive(ws, timeout=120))
            with client_of(system, user) as client:
                answer = client.patch(f"/api/tasks/{task_id}", json={"status": "canceled"})
                assert answer.status_code == 200, answer.text
            rest, code = until_closed(ws)
        listed = until_status(mine, task_id, {"canceled", "success", "error"})
    assert code == 1000 and rest[-1]["status"] == "canceled" and rest[-1]["sequence"] >= int(
        answer.headers["X-Event-Sequence"])
    assert_in_order(seen + rest)
    assert listed[-1]["status"] == "canceled" and listed[-1]["data"]["result"] is None
    assert eventually(lambda: not work_item_kept(system, task_id), timeout=60)  # the runner stopped and acked
    with client_of(system, user) as client:
        mine_images = client.get("/api/images", params={"user": user.id, "page_size": 100}).json()["list"]
    assert [i for i in mine_images if i["task_id"] == task_id] == []
    assert stored_keys(system) == before
