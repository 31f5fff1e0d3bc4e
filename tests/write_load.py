"""A write load for fault tests: threads creating tags over HTTP, each request with its own Idempotency-Key,
retried with the same key until it is acknowledged, as docs/api.md tells a client to do. What it saw is kept to
check against the log afterwards."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import psycopg

from command.app import CommandApp
from events.ids import split_uuid
from events.store.bridge import NatsBridge
from events.store.stream import stream_last_sequence
from events.tags import TagCreated
from infra.settings import Settings
from projectors.checkpoints import read_all_sync, wait_until_projected_sync
from projectors.loop import Target
from projectors.postgres.tags import TagsProjector
from projectors.rebuild import rebuild


@dataclass
class TagWriter:
    url: str
    token: str
    threads: int = 4
    acked: dict[str, int] = field(default_factory=dict)  # tag name -> id the API answered with
    refused: list[tuple[int, str, float]] = field(default_factory=list)  # 503s: status, Retry-After, seconds
    unreachable: int = 0  # connection refused or reset: the API itself was down
    slowest_refusal_s: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> TagWriter:
        self._workers = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def wait_for(self, more: int, seconds: float = 60) -> None:
        """Until `more` further writes have been acknowledged (the system is writing again)."""
        target = len(self.acked) + more
        deadline = time.monotonic() + seconds
        while len(self.acked) < target:
            assert time.monotonic() < deadline, f"writes did not resume: {self.refused[-3:]}"
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop starting new writes; the ones under way are retried until acknowledged."""
        self._stop.set()
        for worker in self._workers:
            worker.join(120)
            assert not worker.is_alive(), "a write was never acknowledged"

    def _write(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, timeout=30) as client:
            number = 0
            while not self._stop.is_set():
                name, key = f"w{n}-{number}", str(uuid.uuid4())
                number += 1
                while True:  # the same key until acknowledged
                    started = time.monotonic()
                    try:
                        answer = client.post("/api/tags", json={"name": name},
                                             headers={**headers, "Idempotency-Key": key})
                    except httpx.TransportError:
                        with self._lock:
                            self.unreachable += 1
                        time.sleep(0.1)
                        continue
                    took = time.monotonic() - started
                    if answer.status_code == 201:
                        with self._lock:
                            self.acked[name] = int(answer.json()["id"])
                        break
                    assert answer.status_code == 503, (answer.status_code, answer.text)
                    with self._lock:
                        self.refused.append((answer.status_code, answer.headers.get("Retry-After", ""), took))
                        self.slowest_refusal_s = max(self.slowest_refusal_s, took)
                    time.sleep(0.1)  # shorter than Retry-After: the test wants the restart seen at once


def tags_in_log(nats_url: str, stream: str) -> list[tuple[str, int]]:
    """(name, id) of every tag created in the log, in order: a tag stored twice would be here twice."""
    app = CommandApp(Settings(stream_name=stream, subject_prefix=stream.lower()), nats_url)
    try:
        found: list[tuple[str, int]] = []
        start = 1
        while batch := app.recorder.select_notifications(start, 1000):
            for notification in batch:
                event = app.mapper.to_domain_event(notification)
                if isinstance(event, TagCreated):
                    kind_and_id = split_uuid(event.originator_id)
                    assert kind_and_id is not None and kind_and_id[0] == "tag"
                    found.append((event.name, kind_and_id[1]))
            start = batch[-1].id + 1
        return found
    finally:
        app.close()


def tag_rows(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM rm.tags ORDER BY id").fetchall()


def wait_projected(url: str, nats_url: str, stream: str, seconds: float = 60) -> int:
    """Until the tags projection has reached the log's last sequence; that sequence."""
    bridge = NatsBridge.shared(nats_url)
    last = stream_last_sequence(bridge, stream)
    assert wait_until_projected_sync(url, ["tags"], last, seconds), \
        f"the projection stopped at {read_all_sync(url)} of {last}"
    return last


def assert_each_acknowledged_write_once(writer: TagWriter, nats_url: str, stream: str) -> None:
    logged = tags_in_log(nats_url, stream)
    names = [name for name, _ in logged]
    assert len(names) == len(set(names)), "a write was stored twice"
    # Every write was retried until acknowledged, so the log holds exactly the acknowledged ones, with the ids
    # the clients were given.
    assert dict(logged) == writer.acked


def assert_read_model_equals_rebuild(live_url: str, clean_url: str, nats_url: str, stream: str, last: int) -> None:
    """The live tags read model equals one rebuilt from the log up to `last` in the empty database `clean_url`."""
    report = asyncio.run(rebuild(TagsProjector(), Target(nats_url, stream, clean_url), last))
    assert report.position == last
    live = tag_rows(live_url)
    assert live and tag_rows(clean_url) == live


def close_bridge(nats_url: str) -> None:
    """Close this process's connection to `nats_url` (the checks above open one) before its server stops."""
    bridge = NatsBridge._shared.get(nats_url)
    if bridge is not None:
        bridge.close()
