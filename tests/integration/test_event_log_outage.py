"""The command side while its NATS server is away: a write is refused at once and never stored later, a write
under way when the server dies is answered as soon as the connection drops (not at its timeout), and writing
resumes by itself when the server is back on its port and store."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.application import AggregateNotFoundError

from aidraw.services import NatsServer
from command.app import CommandApp
from command.tags import Tag
from events.ids import aggregate_uuid, new_id
from events.store.bridge import NatsBridge
from events.store.errors import EventLogUnavailable
from events.tags import TagCreated
from infra.errors import Unavailable
from infra.settings import Settings

TIMEOUT_S = 30.0  # the event-log timeout: every answer below comes far sooner, or the test fails


def new_tag() -> Tag:
    number = new_id()
    return Tag._create(TagCreated, id=aggregate_uuid("tag", number), name=f"t{number}", user_id=None)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    nats = NatsServer(tmp_path / "nats").start()
    yield nats
    bridge = NatsBridge._shared.get(nats.url)
    if bridge is not None:
        bridge.close()
    if nats.proc is not None and nats.proc.poll() is None:
        os.kill(nats.proc.pid, signal.SIGCONT)
    nats.stop()


@pytest.fixture
def app(server: NatsServer) -> Iterator[CommandApp]:
    commands = CommandApp(Settings(event_log_timeout_s=TIMEOUT_S), server.url)
    yield commands
    commands.close()


def wait_connected(bridge: NatsBridge, connected: bool = True, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while bridge.nc.is_connected != connected:
        assert time.monotonic() < deadline, f"the bridge's connection did not become {connected}"
        time.sleep(0.01)


def test_a_write_while_nats_is_down_is_refused_at_once_and_never_stored_later(
    server: NatsServer, app: CommandApp
) -> None:
    app.store(new_tag())
    bridge = app.recorder.bridge  # type: ignore[attr-defined]
    server.kill()
    wait_connected(bridge, False)  # the client has seen the connection drop (a write before that is in doubt)
    refused = new_tag()
    started = time.monotonic()
    with pytest.raises(EventLogUnavailable):
        app.store(refused)
    assert time.monotonic() - started < 2  # at once, not after the 30 s timeout
    server.start()  # the same port and store
    wait_connected(bridge)
    stored = new_tag()
    assert app.store(stored) > 0
    assert app.repository.get(stored.id).name == stored.name
    with pytest.raises(AggregateNotFoundError):  # nothing buffered during the outage went out on reconnect
        app.repository.get(refused.id)


def test_a_write_under_way_when_nats_dies_is_answered_when_the_connection_drops(
    server: NatsServer, app: CommandApp
) -> None:
    app.store(new_tag())
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)  # the server hangs: a write now waits for its answer
    outcome: list[BaseException | int] = []

    def write() -> None:
        try:
            outcome.append(app.store(new_tag()))
        except BaseException as exc:
            outcome.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.5)
    assert not outcome, "the write did not wait for the hung server"
    started = time.monotonic()
    server.kill()  # the connection drops
    writer.join(TIMEOUT_S)
    assert time.monotonic() - started < 3
    assert len(outcome) == 1 and isinstance(outcome[0], Unavailable)
    assert "may or may not have been stored" in outcome[0].detail
    assert outcome[0].headers["Retry-After"] == "2"
