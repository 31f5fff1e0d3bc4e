"""The NATS server stopped and started again (same port, same JetStream store) under the whole generation path:
the API, the projector role (projectors, scheduler, run reports) and a runner. Every process reconnects and
carries on: the task in flight at the restart ends exactly once (one TaskSucceeded, one set of images, no blob
that no image uses), and a task submitted after the restart succeeds."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from aidraw.services import NatsServer, PostgresServer
from infra.storage.local import LocalBlobStore
from tests.accounts import Account, new_account
from tests.catalog_accounts import client_of
from tests.image_support import eventually
from tests.system import System
from tests.write_load import close_bridge

RECIPE = {"prompt": "a harbour in fog", "width": 64, "height": 64, "scheduler": "DDIM"}


def submit(system: System, who: Account, **fields: Any) -> int:
    """POST, as a client does: a 503 (the API has not reconnected yet) is tried again after its Retry-After."""
    deadline = time.monotonic() + 30
    with client_of(system, who) as client:
        while (answer := client.post("/api/images", json={**RECIPE, **fields})).status_code == 503:
            assert time.monotonic() < deadline, answer.text
            time.sleep(float(answer.headers["Retry-After"]))
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])


def status_of(system: System, who: Account, task_id: int) -> str:
    try:
        with client_of(system, who) as client:
            return str(client.get(f"/api/tasks/{task_id}").json()["status"])
    except (httpx.HTTPError, KeyError):
        return "unknown"


def finished(system: System, who: Account, task_id: int, timeout: float = 300) -> dict[str, Any]:
    assert eventually(lambda: status_of(system, who, task_id) in ("success", "error", "canceled"), timeout), (
        status_of(system, who, task_id), system.log("runner"), system.log("projector"))
    with client_of(system, who) as client:
        return dict(client.get(f"/api/tasks/{task_id}").json())


@pytest.mark.slow
def test_runners_and_loops_carry_on_after_a_nats_restart_and_the_task_in_flight_ends_once(
        postgres_server: PostgresServer, tmp_path: Path) -> None:
    nats = NatsServer(tmp_path / "nats").start()
    database = postgres_server.create_database(f"nr_{uuid.uuid4().hex[:8]}")
    sut = System(nats.url, database, f"NR{uuid.uuid4().hex[:8]}", tmp_path / "system", runner=True,
                 extra_env={"AIDRAW_RUNNER_ACK_WAIT": "5"}).start()
    try:
        user = new_account(sut, "restart")
        in_flight = submit(sut, user, num_inference_steps=30, batch_size=2)
        assert eventually(lambda: status_of(sut, user, in_flight) == "running", timeout=120), sut.log("runner")
        nats.stop()
        time.sleep(1.5)  # the run goes on in the runner meanwhile; its reports wait for NATS
        nats.start()  # the same port and store
        after = submit(sut, user, num_inference_steps=4)

        done = finished(sut, user, in_flight)
        assert done["status"] == "success", done
        assert finished(sut, user, after)["status"] == "success"
        with client_of(sut, user) as client:
            events = client.get(f"/api/tasks/{in_flight}/events").json()
            mine = client.get("/api/images", params={"user": user.id, "page_size": 100}).json()["list"]
        assert [e["type"] for e in events].count("TaskSucceeded") == 1, events
        made = [i for i in mine if i["task_id"] == in_flight]
        assert sorted(i["id"] for i in made) == sorted(done["result"]["image_ids"]) and len(made) == 2
        used = {i[k].removeprefix("/api/blobs/") for i in mine for k in ("url", "thumbnail_url")}
        assert set(LocalBlobStore(sut.data_dir / "blobs").keys_before(time.time() + 60)) == used
        assert all(proc.poll() is None for proc in sut.procs.values()), {r: p.poll() for r, p in sut.procs.items()}
    finally:
        sut.stop()
        close_bridge(nats.url)
        nats.stop()
