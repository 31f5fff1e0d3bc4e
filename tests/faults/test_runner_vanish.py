"""A runner that vanishes (SIGKILL: no goodbye, no last heartbeat) shows offline in /api/servers within its TTL,
and the task it was running is taken by another runner and succeeds exactly once (docs/runners.md)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest

from tests.accounts import Account, new_account, new_admin
from tests.catalog_accounts import client_of
from tests.image_support import eventually
from tests.system import System

TTL_S = 3.0
LONG = {"prompt": "a slow boat", "width": 64, "height": 64, "num_inference_steps": 60, "scheduler": "DDIM"}


@pytest.fixture(scope="module")
def system(nats_server: Any, postgres_server: Any, servers_dir: Path) -> Iterator[System]:
    number = os.getpid() * 1000 + 987
    url = postgres_server.create_database(f"vanish_{number}")
    sut = System(nats_server.url, url, f"W{number}", servers_dir / f"vanish-{number}", runner=True,
                 extra_env={"AIDRAW_RUNNER_ACK_WAIT": "3", "AIDRAW_RUNNER_MAX_DELIVER": "3",
                            "AIDRAW_RUNNER_TTL": str(int(TTL_S)), "AIDRAW_RUNNER_NAME": "first"}).start()
    yield sut
    sut.stop()


def by_name(system: System, admin: Account) -> dict[str, dict[str, Any]]:
    with client_of(system, admin) as client:
        return {s["name"]: s for s in client.get("/api/servers").json()["list"]}


def wait_running(system: System, task_id: int) -> None:
    """Until the task's progress messages say it is a few steps in."""
    async def wait() -> None:
        nc = await nats.connect(system.nats_url)
        sub = await nc.subscribe(f"{system.prefix}_changed.tasks.{task_id}")
        while json.loads((await sub.next_msg(timeout=120)).data)["step"] < 3:
            pass
        await nc.close()

    asyncio.run(wait())


def test_a_vanished_runner_is_offline_within_its_ttl_and_its_task_succeeds_once_elsewhere(system: System) -> None:
    user, admin = new_account(system, "vanish"), new_admin(system)
    assert eventually(lambda: by_name(system, admin).get("first", {}).get("status") == "online", timeout=60)
    with client_of(system, user) as client:
        answer = client.post("/api/images", json=LONG)
        assert answer.status_code == 202, answer.text
        task_id = int(answer.json()["id"])
    wait_running(system, task_id)
    assert by_name(system, admin)["first"]["status"] == "busy"

    system.stop_role("runner", kill=True)
    killed_at, killed_wall = time.monotonic(), datetime.now(UTC)
    system.extra_env["AIDRAW_RUNNER_NAME"] = "second"
    system.start_role("runner")
    assert eventually(lambda: by_name(system, admin)["first"]["status"] == "offline", timeout=TTL_S + 10)
    offline_after = time.monotonic() - killed_at
    print(f"offline {offline_after:.2f} s after the SIGKILL (TTL {TTL_S:g} s)")
    assert offline_after <= TTL_S + 3, offline_after  # the TTL, plus polling and a loaded machine's slack
    first = by_name(system, admin)["first"]
    assert datetime.fromisoformat(first["last_seen_at"]) <= killed_wall and first["task_id"] is None

    with client_of(system, user) as client:
        assert eventually(lambda: client.get(f"/api/tasks/{task_id}").json()["status"] in ("success", "error"),
                          timeout=180), (client.get(f"/api/tasks/{task_id}").json(), system.log("runner"))
        done = client.get(f"/api/tasks/{task_id}").json()
        trail = [e["type"] for e in client.get(f"/api/tasks/{task_id}/events").json()]
    second = by_name(system, admin)["second"]
    assert done["status"] == "success" and done["server_name"] == "second", done
    assert done["server_id"] == second["id"] and done["attempt"] == 2
    assert trail.count("TaskSucceeded") == 1 and len(done["result"]["image_ids"]) == 1
    assert eventually(lambda: by_name(system, admin)["second"]["status"] == "online")
