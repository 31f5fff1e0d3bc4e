"""/api/servers with a real `aidraw runner`: it registers and heartbeats (online, busy with its task, draining),
an admin drains it (it finishes, takes nothing more, and a waiting task says why) and lets it work again, and an
offline runner can be deleted while a live one cannot (docs/runners.md)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import KeyNotFoundError

from events.heartbeats import Heartbeat, heartbeat_bucket
from tests.accounts import Account, new_account, new_admin
from tests.catalog_accounts import assert_problem, client_of
from tests.image_support import eventually
from tests.system import System

SMALL = {"prompt": "a harbour", "width": 64, "height": 64, "num_inference_steps": 4, "scheduler": "DDIM"}
LONG = {**SMALL, "num_inference_steps": 40}
NOBODY_SERVES = "; no runner online serves the default base model: it starts when one does"


@pytest.fixture(scope="module")
def system(nats_server: Any, postgres_server: Any, servers_dir: Path) -> Iterator[System]:
    number = os.getpid() * 1000 + 961
    url = postgres_server.create_database(f"srv_{number}")
    sut = System(nats_server.url, url, f"V{number}", servers_dir / f"servers-{number}", runner=True,
                 extra_env={"AIDRAW_RUNNER_NAME": "srv-1", "AIDRAW_RUNNER_TTL": "3"}).start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def alice(system: System) -> Account:
    return new_account(system, "alice")


@pytest.fixture(scope="module")
def admin(system: System) -> Account:
    return new_admin(system)


def servers(system: System, who: Account) -> list[dict[str, Any]]:
    with client_of(system, who) as client:
        answer = client.get("/api/servers")
        assert answer.status_code == 200, answer.text
        return list(answer.json()["list"])


def the_server(system: System, who: Account, status: str | None = None, timeout: float = 60) -> dict[str, Any]:
    """The module's runner as `who` sees it, once it shows `status` (any, when None)."""
    def found() -> bool:
        listed = servers(system, who)
        return len(listed) == 1 and (status is None or listed[0]["status"] == status)

    assert eventually(found, timeout=timeout), (servers(system, who), system.log("runner"))
    return servers(system, who)[0]


def runner_says(system: System, server_id: int) -> str | None:
    """The status in the runner's own heartbeat (what it acts on), or None without one."""
    async def read() -> str | None:
        nc = await nats.connect(system.nats_url)
        try:
            kv = await nc.jetstream().key_value(heartbeat_bucket(system.stream))
            beat = Heartbeat.decode((await kv.get(str(server_id))).value or b"")
            return beat.status if beat is not None else None
        except KeyNotFoundError:
            return None
        finally:
            await nc.close()

    return asyncio.run(read())


def generate(system: System, who: Account, **fields: Any) -> int:
    with client_of(system, who) as client:
        answer = client.post("/api/images", json={**SMALL, **fields})
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])


def task(system: System, who: Account, task_id: int) -> dict[str, Any]:
    with client_of(system, who) as client:
        return dict(client.get(f"/api/tasks/{task_id}").json())


def finished(system: System, who: Account, task_id: int) -> dict[str, Any]:
    # a generous bound: on a test machine shared by many jobs a run can take minutes
    assert eventually(lambda: task(system, who, task_id)["status"] in ("success", "error"), timeout=300), (
        task(system, who, task_id), system.log("runner"))
    return task(system, who, task_id)


def test_a_runner_shows_online_with_what_it_is(system: System, alice: Account) -> None:
    server = the_server(system, alice, "online")
    assert server["name"] == "srv-1" and server["device"] == "cpu"
    assert server["capabilities"] == ["default", "train-default"]
    assert server["memory"] > 2**20 and server["version"] and server["task_id"] is None
    seen = datetime.fromisoformat(server["last_seen_at"])
    assert abs((datetime.now(UTC) - seen).total_seconds()) < 10
    with client_of(system, alice) as client:
        for path in (f"/api/servers/{server['id']}", f"/api/server/{server['id']}"):
            detail = client.get(path).json()
            assert {k: v for k, v in detail.items() if k != "last_seen_at"} == {
                k: v for k, v in server.items() if k != "last_seen_at"}
        assert_problem(client.get("/api/servers/12345"), 404)
        assert_problem(client.get("/api/servers", params={"status": "asleep"}), 422)
        assert [s["id"] for s in client.get("/api/servers", params={"status": "online"}).json()["list"]] == [
            server["id"]]
        assert client.get("/api/servers", params={"status": "offline,busy"}).json()["list"] == []
    with client_of(system, None) as anonymous:
        assert_problem(anonymous.get("/api/servers"), 401)
        assert 'aidraw_servers{status="online"} 1.0' in anonymous.get("/metrics").text


def test_a_busy_runner_shows_its_task_to_admins_only(system: System, alice: Account, admin: Account) -> None:
    task_id = generate(system, alice, **LONG)
    busy = the_server(system, admin, "busy")
    assert busy["task_id"] == task_id and busy["task_ids"] == [task_id]
    seen_by_alice = the_server(system, alice)
    assert seen_by_alice["task_id"] is None and seen_by_alice["task_ids"] == []
    with client_of(system, None) as anonymous:
        assert 'aidraw_servers{status="busy"} 1.0' in anonymous.get("/metrics").text
    assert finished(system, alice, task_id)["status"] == "success"
    the_server(system, admin, "online")


def test_only_an_admin_drains_and_only_to_draining_or_online(system: System, alice: Account,
                                                             admin: Account) -> None:
    server_id = the_server(system, admin)["id"]
    with client_of(system, alice) as client:
        assert_problem(client.patch(f"/api/servers/{server_id}", json={"status": "draining"}), 403)
    with client_of(system, None) as anonymous:
        assert_problem(anonymous.patch(f"/api/servers/{server_id}", json={"status": "draining"}), 401)
    with client_of(system, admin) as client:
        for body in ({"status": "offline"}, {"status": "busy"}, {"status": "draining", "name": "x"}, {}):
            assert_problem(client.patch(f"/api/servers/{server_id}", json=body), 422)
        assert_problem(client.patch("/api/servers/12345", json={"status": "draining"}), 404)
    assert the_server(system, alice)["status"] == "online"  # nothing changed


def test_a_drained_runner_takes_no_more_work_until_it_is_resumed(system: System, alice: Account,
                                                                 admin: Account) -> None:
    server_id = the_server(system, admin, "online")["id"]
    with client_of(system, admin) as client:
        drained = client.patch(f"/api/server/{server_id}", json={"status": "draining"})
        assert drained.status_code == 200, drained.text
        assert drained.json()["status"] == "draining"
        assert client.patch(f"/api/servers/{server_id}", json={"status": "draining"}).status_code == 200
    the_server(system, alice, "draining")  # another caller sees it once projected (no read-your-writes for her)
    # The runner reads its own aggregate every second; once its heartbeat says draining it asks for no more work,
    # and a fetch it had already begun gives up within its idle wait (gpu_runner/worker.py IDLE_WAIT_S, 0.5 s).
    assert eventually(lambda: runner_says(system, server_id) == "draining", timeout=30), system.log("runner")
    time.sleep(1)
    waiting = generate(system, alice)
    assert eventually(lambda: task(system, alice, waiting)["waiting_reason"].endswith(NOBODY_SERVES), timeout=30), \
        task(system, alice, waiting)
    time.sleep(4)
    held = task(system, alice, waiting)
    assert held["status"] == "waiting" and held["attempt"] == 0 and held["estimated_start_at"] is None
    with client_of(system, admin) as client:
        resumed = client.patch(f"/api/servers/{server_id}", json={"status": "online"})
        assert resumed.status_code == 200 and resumed.json()["status"] == "online", resumed.text
    assert finished(system, alice, waiting)["status"] == "success"
    with client_of(system, admin) as client:
        trail = [e["type"] for e in client.get(f"/api/servers/{server_id}/events").json()]
    assert trail.count("ServerDrainRequested") == 1 and trail.count("ServerResumed") == 1


def test_an_offline_runner_can_be_deleted_a_live_one_cannot(system: System, alice: Account,
                                                           admin: Account) -> None:
    server_id = the_server(system, admin, "online")["id"]
    with client_of(system, admin) as client:
        assert_problem(client.delete(f"/api/servers/{server_id}"), 409)
    with client_of(system, alice) as client:
        assert_problem(client.delete(f"/api/servers/{server_id}"), 403)
    system.stop_role("runner")  # a clean stop takes its heartbeat away at once
    the_server(system, admin, "offline", timeout=10)
    waiting = generate(system, alice)
    assert eventually(lambda: task(system, alice, waiting)["waiting_reason"].endswith(NOBODY_SERVES))
    with client_of(system, admin) as client:
        assert client.delete(f"/api/server/{server_id}").status_code == 204
        assert_problem(client.get(f"/api/servers/{server_id}"), 404)
        assert_problem(client.delete(f"/api/servers/{server_id}"), 404)
    assert servers(system, admin) == []
