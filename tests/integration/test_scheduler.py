"""The scheduler process on real servers: waiting tasks get a place in the fair order and are released to the
work queue just in time (at most the lookahead per capability waits there), a runner's start lets the next one
out in fair order, and a restarted scheduler carries on from the log without releasing anything twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from aidraw.services import NatsServer, PostgresServer
from command.app import CommandApp
from command.run_reports import ProducedImage, record_produced, record_started
from events.work import read_work_item, work_prefix, work_stream_name
from infra.settings import Settings
from tests.accounts import Account, new_account, system_with
from tests.catalog_accounts import client_of
from tests.image_support import eventually
from tests.system import System

LOOKAHEAD = 2


@pytest.fixture(scope="module")
def system(nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path) -> Iterator[System]:
    with system_with(nats_server, postgres_server, servers_dir,
                     AIDRAW_SCHEDULER_LOOKAHEAD=str(LOOKAHEAD)) as sut:
        yield sut


@pytest.fixture(scope="module")
def commands(system: System) -> Iterator[CommandApp]:
    """Plays the runners' process manager: records that a runner started a task."""
    app = CommandApp(Settings(stream_name=system.stream, subject_prefix=system.prefix), system.nats_url)
    yield app
    app.close()


def work_queue(system: System) -> list[int]:
    """Task ids waiting in the work queue, in the order runners would get them."""
    async def read() -> list[int]:
        nc = await nats.connect(system.nats_url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(work_stream_name(system.stream))
            first, last = int(info.state.first_seq), int(info.state.last_seq)
            found = []
            for seq in range(first, last + 1):
                try:
                    msg = await js.get_msg(work_stream_name(system.stream), seq)
                except nats.js.errors.NotFoundError:
                    continue
                assert msg.subject is not None and msg.subject.startswith(work_prefix(system.prefix) + ".default.")
                assert msg.data is not None
                found.append(int(read_work_item(msg.data)["task_id"]))
            return found
        finally:
            await nc.close()

    try:
        return asyncio.run(read())
    except nats.js.errors.NotFoundError:
        return []


def take(system: System, task_id: int) -> None:
    """A runner takes the task off the queue (acks it), as the worker does."""
    async def ack() -> None:
        nc = await nats.connect(system.nats_url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(f"{work_prefix(system.prefix)}.default.{task_id}", durable=None,
                                          stream=work_stream_name(system.stream))
            for msg in await sub.fetch(1, timeout=5):
                await msg.ack_sync()
        finally:
            await nc.close()

    asyncio.run(ack())


def start(commands: CommandApp, task_id: int, attempt: int = 1) -> None:
    """A runner's report that it started the task (the scheduler may be writing to the task at the same time)."""
    assert record_started(commands, task_id, None, "test-runner", attempt)


def succeed(commands: CommandApp, task_id: int) -> None:
    picture = ProducedImage("ab/cd/abcd" + "0" * 60 + ".png", None, "image/png", 64, 64, 1, None)
    assert record_produced(commands, task_id, [picture], "whole")


def generate(system: System, who: Account, n: int) -> list[int]:
    ids = []
    with client_of(system, who) as client:
        for _ in range(n):
            answer = client.post("/api/images", json={"prompt": "queued"})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
    return ids


def detail(system: System, who: Account, task_id: int) -> dict[str, Any]:
    with client_of(system, who) as client:
        return dict(client.get(f"/api/tasks/{task_id}").json())


def test_a_newcomer_overtakes_a_backlog_and_restarts_release_nothing_twice(system: System,
                                                                          commands: CommandApp) -> None:
    flooder, newcomer = new_account(system, "flood"), new_account(system, "new")
    backlog = generate(system, flooder, 6)
    assert eventually(lambda: work_queue(system) == backlog[:LOOKAHEAD], timeout=30), work_queue(system)
    single = generate(system, newcomer, 1)[0]

    def placed() -> bool:
        shown = detail(system, newcomer, single)
        return shown["queue_position"] == LOOKAHEAD  # only the two released go before it

    assert eventually(placed, timeout=30), detail(system, newcomer, single)
    assert detail(system, flooder, backlog[5])["queue_position"] == LOOKAHEAD + 1 + 3
    assert detail(system, flooder, backlog[0])["waiting_reason"].startswith("released")

    take(system, backlog[0])
    start(commands, backlog[0])
    assert eventually(lambda: work_queue(system) == [backlog[1], single], timeout=30), work_queue(system)

    system.stop_role("projector")  # the scheduler runs in the process manager, beside the projectors
    system.start_role("projector")
    take(system, backlog[1])
    start(commands, backlog[1])
    assert eventually(lambda: work_queue(system) == [single, backlog[2]], timeout=30), work_queue(system)
    with client_of(system, flooder) as client:
        trail = [e["type"] for e in client.get(f"/api/tasks/{backlog[2]}/events").json()]
    assert trail == ["TaskCreated", "TaskWaiting", "TaskEnqueued", "TaskReleased"]  # once each, restart or not


def test_a_canceled_waiting_task_is_never_released(system: System, commands: CommandApp) -> None:
    user, other = new_account(system, "cancel"), new_account(system, "other")
    ahead = generate(system, other, LOOKAHEAD + 1)  # fills the lookahead: the next ones wait unreleased
    doomed = generate(system, user, 1)[0]
    assert eventually(lambda: detail(system, user, doomed)["queue_position"] is not None, timeout=30)
    with client_of(system, user) as client:
        assert client.patch(f"/api/tasks/{doomed}", json={"status": "canceled"}).status_code == 200
    released: list[int] = []
    for _ in range(40):  # run everything that comes out, as runners would, until the queue stays empty
        queued = work_queue(system)
        if not queued and not eventually(lambda: bool(work_queue(system)), timeout=2):
            break
        for task_id in queued:
            take(system, task_id)
            start(commands, task_id)
            released.append(task_id)
    assert set(ahead) <= set(released) and doomed not in released
    with client_of(system, user) as client:
        trail = [e["type"] for e in client.get(f"/api/tasks/{doomed}/events").json()]
    assert "TaskReleased" not in trail and trail[-1] == "TaskCanceled"


def test_runner_time_is_counted_per_user_and_stays_when_the_task_is_deleted(system: System,
                                                                           commands: CommandApp) -> None:
    user = new_account(system, "usage")
    task_id = generate(system, user, 1)[0]
    assert eventually(lambda: (detail(system, user, task_id)["waiting_reason"] or "").startswith("released"),
                      timeout=30)
    start(commands, task_id)
    succeed(commands, task_id)
    with client_of(system, user) as client:
        assert eventually(lambda: client.get(f"/api/tasks/{task_id}").json()["status"] == "success", timeout=30)
        used = client.get("/api/account").json()
        assert used["gpu_seconds"] > 0 and used["unfinished_tasks"] == 0
        assert len(client.get(f"/api/tasks/{task_id}").json()["result"]["image_ids"]) == 1
        assert client.delete(f"/api/tasks/{task_id}").status_code == 204
        after = client.get("/api/account").json()
        assert after["gpu_seconds"] == used["gpu_seconds"] and after["counts"]["tasks"] == 0


def test_metrics_show_the_queue_per_capability_and_wait_and_run_times(system: System,
                                                                     commands: CommandApp) -> None:
    user = new_account(system, "metrics")
    done = generate(system, user, 1)[0]
    assert eventually(lambda: (detail(system, user, done)["waiting_reason"] or "").startswith("released"),
                      timeout=30)
    start(commands, done)
    succeed(commands, done)
    generate(system, user, 1)
    with client_of(system, user) as client:
        assert eventually(lambda: client.get(f"/api/tasks/{done}").json()["status"] == "success", timeout=30)
        text = client.get("/metrics").text
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
             if line.startswith("aidraw_task")}
    assert lines['aidraw_tasks_waiting{capability="default"}'] >= 1
    assert 'aidraw_task_run_seconds{capability="default",quantile="0.5"}' in lines
    assert lines['aidraw_task_wait_seconds{capability="default",quantile="0.95"}'] >= 0
