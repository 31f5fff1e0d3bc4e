"""A runner's own events (events/runs.py, as gpu_runner/reports.py writes them) and the admins' decisions
(events/servers.py) fold into command/servers.py `Server`: what it serves, the task it runs until that task's
outcome is reported, whether it is draining; a live runner cannot be deleted."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from command.servers import Server
from events.codec import decode, mapper
from events.heartbeats import Heartbeat
from events.ids import aggregate_uuid
from events.runs import RunnerStarted, RunProduced, RunStarted
from infra.actor import Actor
from infra.errors import Conflict
from infra.schemas_servers import live_status

UUID = aggregate_uuid("server", 42)
ADMIN = Actor(user_id=1, role="admin")


def _event(kind: type[Any], number: int, **fields: Any) -> Any:
    """Through the stored form and back, as the log hands it to the command side."""
    event = kind(originator_id=UUID, originator_version=number, timestamp=dt.datetime.now(dt.UTC), **fields)
    return mapper().to_domain_event(mapper().to_stored_event(event))


def _server() -> Server:
    server = _event(RunnerStarted, 1, originator_topic="command.servers:Server", name="gpu-1", device="cuda",
                    capabilities=["default"], software_version="0.1.0", memory_bytes=2**34).mutate(None)
    assert isinstance(server, Server)
    return server


def test_a_runner_s_events_fold_into_its_server() -> None:
    server = _server()
    assert server.number == 42 and server.capabilities == ["default"] and server.memory_bytes == 2**34
    _event(RunStarted, 2, task_id=7, attempt=1, server_name="gpu-1").mutate(server)
    assert server.task_id == 7
    _event(RunProduced, 3, task_id=7, attempt=1, pictures=[], prompt_handling="whole").mutate(server)
    assert server.task_id is None and server.version == 3


def test_a_v1_registration_reads_with_unknown_memory() -> None:
    # The payload as version 1 of RunnerStarted wrote it: no `memory_bytes`, no class_version key.
    v1_state = json.dumps({
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-01T10:00:00+00:00"},
        "originator_topic": "command.servers:Server", "name": "old", "device": "cpu",
        "capabilities": ["default"], "software_version": "0.0.9",
    }).encode()
    event = decode(UUID, 1, "events.runs:RunnerStarted", v1_state)
    assert isinstance(event, RunnerStarted) and event.memory_bytes is None and event.name == "old"
    server = event.mutate(None)
    assert isinstance(server, Server) and server.memory_bytes is None and server.software_version == "0.0.9"


def test_drain_and_resume_each_record_once() -> None:
    server = _server()
    assert server.drain(ADMIN) and server.draining
    assert not server.drain(ADMIN)  # draining already: nothing to record
    assert server.resume(ADMIN) and not server.draining
    assert not server.resume(ADMIN)
    assert [type(e).__name__ for e in server.collect_events()] == ["ServerDrainRequested", "ServerResumed"]


def test_an_online_server_cannot_be_deleted_an_offline_one_can() -> None:
    server = _server()
    with pytest.raises(Conflict):
        server.delete(ADMIN, online=True)
    server.delete(ADMIN, online=False)
    assert server.deleted


def test_the_live_status_comes_from_the_heartbeat_and_the_admin_s_drain() -> None:
    idle, busy = Heartbeat(42, "online", [], 1.0), Heartbeat(42, "busy", [7], 1.0)
    assert live_status(False, None) == live_status(True, None) == "offline"
    assert live_status(False, idle) == "online" and live_status(False, busy) == "busy"
    assert live_status(True, busy) == "draining"  # the admin's word counts before the runner noticed


def test_a_heartbeat_round_trips_and_junk_is_no_heartbeat() -> None:
    beat = Heartbeat(42, "busy", [7, 8], 123.5, ["default", "base-9"])
    assert Heartbeat.decode(beat.encode()) == beat
    for junk in (b"", b"{}", b"[1]", b'{"server_id": 1, "status": "dancing", "at": 1}', b"\xff"):
        assert Heartbeat.decode(junk) is None
