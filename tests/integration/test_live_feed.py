"""The live feed over a real WebSocket client against the real API and projector processes: the first state,
changes as each caller's GET shows them, progress and previews, close codes, tickets, a revoked token, slow
beside fast, one NATS subscription per process, and a second API replica.

Changes reach the feed as in production: the projector announces each commit (events/changes.py). Progress and
previews are published here the way the runner is to publish them (events/progress.py), since no runner loop
publishes them yet."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import ClientConnection

from aidraw.services import free_port
from events.progress import Progress
from tests.accounts import log_in
from tests.catalog_accounts import People, Person, client_of
from tests.catalog_objects import delete, upload_image
from tests.image_support import wait_projected
from tests.live_support import close_code, open_socket, progress, receive
from tests.system import System

OSS = "https://cdn.example.com/train/1.png"
PREVIEW = "data:image/jpeg;base64," + base64.b64encode(os.urandom(6000)).decode()  # 8 KB, incompressible


def new_model(system: System, who: Person, public: bool = False) -> dict:
    body = {"name": f"m-{uuid.uuid4().hex[:8]}", "type": "lora", "base_model": "SD1.5", "data": {"oss": [OSS]},
            "public": public}
    with client_of(system, who) as client:
        answer = client.post("/api/models", json=body)
        assert answer.status_code == 201, answer.text
    wait_projected(system, answer.headers["X-Event-Sequence"])
    return dict(answer.json())


def step(model: dict, tick: int, preview: bool = False) -> Progress:
    return Progress("models", model["id"], tick, tick, 100, tick, PREVIEW if preview else None)


def test_a_socket_gets_the_state_at_once_then_each_change_as_its_callers_get_shows_it(
        system: System, people: People) -> None:
    image = upload_image(system, people.alice)
    wait_projected(system, "0")
    with open_socket(system, f"/api/images/{image['id']}", people.bob.token) as ws:
        first = receive(ws)
        assert first["id"] == image["id"] and first["data"]["likes"] == 0
        with client_of(system, people.bob) as client:
            answer = client.put(f"/api/images/{image['id']}/like")
            assert answer.status_code == 204, answer.text
        sequence = answer.headers["X-Event-Sequence"]
        wait_projected(system, sequence)
        changed = receive(ws)
        assert changed["data"]["likes"] == 1
        assert changed["sequence"] >= int(sequence) and changed["sequence"] >= first["sequence"]
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1)


def test_close_codes_bad_token_hidden_object_and_unknown_id(system: System, people: People) -> None:
    model = new_model(system, people.alice)  # private
    with open_socket(system, f"/api/models/{model['id']}", "1.not-a-token") as ws:
        assert close_code(ws) == 4401
    for who in (people.bob, None):  # another user's private object: 4404, as a GET would answer 404
        with open_socket(system, f"/api/models/{model['id']}", who.token if who else None) as ws:
            assert close_code(ws) == 4404
    with open_socket(system, "/api/models/12345", people.alice.token) as ws:
        assert close_code(ws) == 4404
    with open_socket(system, "/api/models/nope", people.alice.token) as ws:
        assert close_code(ws) == 4404
    with open_socket(system, f"/api/models/{model['id']}", people.admin.token, header=True) as ws:
        assert receive(ws)["id"] == model["id"]  # admins see it; Authorization works too


def test_an_object_that_becomes_invisible_closes_4404_and_a_deleted_one_sends_a_final_message_then_1000(
        system: System, people: People) -> None:
    model = new_model(system, people.alice, public=True)
    with open_socket(system, f"/api/models/{model['id']}", people.bob.token) as bobs, \
            open_socket(system, f"/api/models/{model['id']}", people.alice.token) as alices:
        receive(bobs), receive(alices)
        with client_of(system, people.alice) as client:
            answer = client.patch(f"/api/models/{model['id']}", json={"public": False})
            assert answer.status_code == 200, answer.text
        wait_projected(system, answer.headers["X-Event-Sequence"])
        assert close_code(bobs) == 4404
        assert receive(alices)["data"]["public"] is False
        sequence = delete(system, people.alice, f"/api/models/{model['id']}")
        wait_projected(system, sequence)
        final = receive(alices)
        assert final["status"] == "deleted" and final["data"] is None and final["sequence"] >= int(sequence)
        assert close_code(alices) == 1000


def drain(ws: ClientConnection, quiet_s: float = 1.5) -> list[dict]:
    """Every message until none comes for `quiet_s`."""
    got = []
    while True:
        try:
            got.append(receive(ws, timeout=quiet_s))
        except TimeoutError:
            return got


def test_progress_and_previews_reach_the_watchers_and_a_slow_client_gets_the_latest_without_holding_up_others(
        system: System, people: People) -> None:
    model = new_model(system, people.alice, public=True)
    with open_socket(system, f"/api/models/{model['id']}", people.alice.token, max_queue=None) as fast, \
            open_socket(system, f"/api/models/{model['id']}", people.bob.token, max_queue=1) as slow:
        receive(fast), receive(slow)
        progress(system, [step(model, 1), step(model, 2, preview=True)], pause_s=0.3)
        one, two = receive(fast), receive(fast)
        assert (one["tick"], one["progress"], one["data"]["step"]) == (1, 1, 1) and "preview" not in one["data"]
        assert two["data"]["preview"] == PREVIEW and two["status"] == "initial" and two["data"]["id"] == model["id"]
        # 600 more with 8 KB previews (5 MB), while the slow client reads nothing (its TCP window fills)
        progress(system, [step(model, tick, preview=True) for tick in range(3, 603)], pause_s=0.002)
        seen = drain(fast)
        late = drain(slow, quiet_s=3)
        for got in (seen, late):
            ticks = [m["tick"] for m in got]
            assert ticks == sorted(set(ticks)) and ticks[-1] == 602  # in order, no duplicates, the latest last
        assert len(late) < len(seen)  # the slow one got coalesced updates; the fast one more of them
        assert len(late) < 400


def test_a_ticket_opens_one_socket_once_and_a_revoked_token_ends_the_socket_at_the_next_message(
        system: System, people: People) -> None:
    model = new_model(system, people.alice)
    with client_of(system, people.alice) as client:
        answer = client.post("/api/tickets")
    assert answer.status_code == 201, answer.text
    ticket = answer.json()["ticket"]
    with open_socket(system, f"/api/models/{model['id']}", ticket=ticket) as ws:
        assert receive(ws)["id"] == model["id"]
    with open_socket(system, f"/api/models/{model['id']}", ticket=ticket) as ws:
        assert close_code(ws) == 4401  # used
    with client_of(system, None) as client:
        assert client.post("/api/tickets").status_code == 401
    login = log_in(system, name=people.alice.name)
    assert login.status_code == 201, login.text
    session = login.json()
    with open_socket(system, f"/api/models/{model['id']}", session["token"]) as ws:
        receive(ws)
        with client_of(system, people.alice) as client:
            assert client.delete(f"/api/sessions/{session['id']}").status_code == 204
        time.sleep(1.2)  # the per-process liveness cache (1 s)
        progress(system, [step(model, 1)])
        assert close_code(ws) == 4401


def test_one_subscription_feeds_fifty_sockets_and_too_many_sockets_per_user_close_4429(
        system: System, people: People) -> None:
    model = new_model(system, people.alice, public=True)
    sockets: list[ClientConnection] = []
    try:
        for who in [people.alice] * 25 + [people.bob] * 25:
            sockets.append(open_socket(system, f"/api/models/{model['id']}", who.token))
            receive(sockets[-1])
        metrics = httpx.get(system.url + "/metrics").text
        assert re.search(r"^aidraw_live_nats_subscriptions 1\.0$", metrics, re.M), metrics
        assert re.search(r"^aidraw_live_sockets 50\.0$", metrics, re.M)
        progress(system, [step(model, 1)])
        assert all(receive(ws)["tick"] == 1 for ws in sockets)
        for _ in range(7):  # alice reaches the default 32
            sockets.append(open_socket(system, f"/api/models/{model['id']}", people.alice.token))
            receive(sockets[-1])
        with open_socket(system, f"/api/models/{model['id']}", people.alice.token) as extra:
            assert close_code(extra) == 4429
    finally:
        for ws in sockets:
            ws.close()


@pytest.fixture()
def replica(system: System) -> Iterator[System]:
    """A second API process on the same stream and database, logging at INFO (handshakes included)."""
    second = System(system.nats_url, system.database_url, system.stream, system.data_dir.parent / "replica",
                    port=free_port(), extra_env={"AIDRAW_LOG_LEVEL": "INFO"})
    second.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(second.env, AIDRAW_DATA_DIR=str(system.data_dir))
    with open(second.data_dir / "api.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "aidraw.cli", "api"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    second.procs["api"] = proc
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(second.url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield second
    second.stop()


def test_two_replicas_each_subscribe_and_stream_the_same_messages_and_no_token_reaches_a_log(
        system: System, replica: System, people: People) -> None:
    model = new_model(system, people.alice, public=True)
    with open_socket(system, f"/api/models/{model['id']}", people.alice.token) as one, \
            open_socket(replica, f"/api/models/{model['id']}", people.alice.token) as two:
        first_one, first_two = receive(one), receive(two)
        assert first_one["data"] == first_two["data"]
        for tick in (1, 2):
            progress(system, [step(model, tick, preview=tick == 1)])
            assert receive(one) == receive(two)
    log = (replica.data_dir / "api.log").read_text(errors="replace")
    assert "WebSocket" in log and "[redacted]" in log, log[-2000:]
    assert people.alice.token not in log and people.alice.token.split(".")[-1] not in log


def test_a_task_socket_streams_progress_and_previews_then_a_cancel_ends_it_with_1000(
        system: System, people: People) -> None:
    with client_of(system, people.alice) as client:
        answer = client.post("/api/images", json={"prompt": "a red fox in snow"})
        assert answer.status_code == 202, answer.text
    task = answer.json()
    wait_projected(system, answer.headers["X-Event-Sequence"])
    with open_socket(system, f"/api/tasks/{task['id']}", people.bob.token) as ws:
        assert close_code(ws) == 4404  # another user's task
    with open_socket(system, f"/api/tasks/{task['id']}", people.alice.token) as one, \
            open_socket(system, "/api/tasks", people.alice.token) as mine:
        first = receive(one)
        assert first["status"] == "waiting" and first["data"]["id"] == task["id"]
        listed = receive(mine)
        assert listed["id"] == task["id"] and listed["data"] == first["data"]
        update = Progress("tasks", task["id"], 1, 5, 20, 25, PREVIEW)
        progress(system, [update])
        for ws in (one, mine):
            got = receive(ws)
            assert (got["tick"], got["progress"], got["data"]["step"], got["data"]["preview"]) == (1, 25, 5, PREVIEW)
        with client_of(system, people.alice) as client:
            canceled = client.patch(f"/api/tasks/{task['id']}", json={"status": "canceled"})
            assert canceled.status_code == 200, canceled.text
        sequence = canceled.headers["X-Event-Sequence"]
        wait_projected(system, sequence)
        final = receive(one)
        assert final["status"] == "canceled" and final["sequence"] >= int(sequence)
        assert close_code(one) == 1000
        assert receive(mine)["status"] == "canceled"  # the caller's all-tasks socket stays open
        with pytest.raises(TimeoutError):
            mine.recv(timeout=0.5)
    with open_socket(system, f"/api/tasks/{task['id']}", people.alice.token) as ws:  # a finished task
        assert receive(ws)["status"] == "canceled"
        assert close_code(ws) == 1000
