"""A runner's own events (events/runs.py, as gpu_runner/reports.py writes them) fold into command/servers.py
`Server`: what it serves, and the task it runs until that task's outcome is reported."""

from __future__ import annotations

import datetime as dt
from typing import Any

from command.servers import Server
from events.codec import mapper
from events.ids import aggregate_uuid
from events.runs import RunnerStarted, RunProduced, RunStarted

UUID = aggregate_uuid("server", 42)


def _event(kind: type[Any], number: int, **fields: Any) -> Any:
    """Through the stored form and back, as the log hands it to the command side."""
    event = kind(originator_id=UUID, originator_version=number, timestamp=dt.datetime.now(dt.UTC), **fields)
    return mapper().to_domain_event(mapper().to_stored_event(event))


def test_a_runner_s_events_fold_into_its_server() -> None:
    server = _event(RunnerStarted, 1, originator_topic="command.servers:Server", name="gpu-1", device="cuda",
                    capabilities=["default"], software_version="0.1.0").mutate(None)
    assert isinstance(server, Server) and server.number == 42 and server.capabilities == ["default"]
    _event(RunStarted, 2, task_id=7, attempt=1, server_name="gpu-1").mutate(server)
    assert server.task_id == 7
    _event(RunProduced, 3, task_id=7, attempt=1, pictures=[], prompt_handling="whole").mutate(server)
    assert server.task_id is None and server.version == 3
