"""Heartbeats and drains on a real NATS server, without a runner process: the bucket's TTL is the configured one
(and follows a change of it), the API's mirror (infra/presence.py) sees a runner put, leave and expire, and a
runner's report that finds an admin's drain in its way learns the drain and takes the next version."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import nats
import pytest

from aidraw.services import NatsServer
from events.codec import mapper
from events.heartbeats import Heartbeat, ensure_heartbeats, heartbeat_bucket, open_heartbeats
from events.ids import aggregate_uuid
from events.runs import RunStarted
from events.servers import ServerDrainRequested
from events.store.aio import AsyncJetStreamStore
from events.store.bridge import NatsBridge
from events.store.stream import ensure_stream
from gpu_runner.reports import ReportLog
from infra.presence import RunnerPresence

T = TypeVar("T")


@pytest.fixture
def prefix(nats_server: NatsServer, stream_name: str) -> Iterator[str]:
    bridge = NatsBridge(nats_server.url)
    ensure_stream(bridge, stream_name, stream_name.lower())
    yield stream_name.lower()
    bridge.close()


def on_loop(url: str, work: Callable[[nats.NATS], Awaitable[T]]) -> T:
    async def main() -> T:
        nc = await nats.connect(url)
        try:
            return await work(nc)
        finally:
            await nc.close()

    return asyncio.run(main())


def test_the_bucket_takes_the_configured_ttl_and_a_runner_never_changes_it(nats_server: NatsServer,
                                                                            stream_name: str) -> None:
    async def work(nc: nats.NATS) -> list[float]:
        js = nc.jetstream()
        await ensure_heartbeats(js, stream_name, 5.0)
        first = (await js.stream_info(f"KV_{heartbeat_bucket(stream_name)}")).config.max_age
        await ensure_heartbeats(js, stream_name, 7.0)  # the operator changed AIDRAW_RUNNER_TTL
        second = (await js.stream_info(f"KV_{heartbeat_bucket(stream_name)}")).config.max_age
        await open_heartbeats(js, stream_name, 30.0)  # a runner configured otherwise binds, changes nothing
        third = (await js.stream_info(f"KV_{heartbeat_bucket(stream_name)}")).config.max_age
        return [float(first or 0), float(second or 0), float(third or 0)]

    assert on_loop(nats_server.url, work) == [5.0, 7.0, 7.0]


def test_the_mirror_sees_a_runner_put_leave_and_expire(nats_server: NatsServer, stream_name: str) -> None:
    ttl = 1.0

    async def work(nc: nats.NATS) -> None:
        js = nc.jetstream()
        presence = RunnerPresence(ttl)
        await presence.start(js, stream_name, 1)
        kv = await open_heartbeats(js, stream_name, ttl)
        try:
            await kv.put("11", Heartbeat(11, "busy", [5], time.time(), ["default"]).encode())
            await kv.put("12", Heartbeat(12, "draining", [], time.time(), ["default"]).encode())
            await kv.put("13", b"not a heartbeat")
            await kv.put("14", Heartbeat(99, "online", [], time.time()).encode())  # under another's key
            await asyncio.sleep(0.3)
            assert sorted(presence.everyone()) == [11, 12]
            beat = presence.alive(11)
            assert beat is not None and (beat.status, beat.task_ids, beat.capabilities) == ("busy", [5], ["default"])
            assert presence.serving("default") == 1 and presence.serving("base-3") == 0  # draining serves none
            await kv.delete("12")  # a clean stop
            await asyncio.sleep(0.3)
            assert sorted(presence.everyone()) == [11]
            await asyncio.sleep(ttl + 1.0)  # no further put: the server drops the entry
            assert presence.everyone() == {} and not presence.is_online(11)
        finally:
            await presence.stop()

    on_loop(nats_server.url, work)


def test_a_report_after_an_admin_s_drain_learns_it_and_takes_the_next_version(nats_server: NatsServer,
                                                                              prefix: str,
                                                                              stream_name: str) -> None:
    async def work(nc: nats.NATS) -> tuple[bool, bool, list[int]]:
        store = AsyncJetStreamStore(nc, stream_name, prefix)
        reports = ReportLog(store)
        await reports.register("gpu-1", "cpu", ["default"], "test", 2**30)
        drained: Any = ServerDrainRequested  # eventsourcing's event classes take their fields as keywords
        drain = drained(originator_id=aggregate_uuid("server", reports.server_id),
                                     originator_version=2, timestamp=dt.datetime.now(dt.UTC), user_id=1)
        await store.insert_events([mapper().to_stored_event(drain)])  # the admin's write, from elsewhere
        before = reports.draining
        await reports.report(RunStarted, task_id=7, attempt=1, server_name="gpu-1")
        events = await store.select_events(aggregate_uuid("server", reports.server_id))
        return before, reports.draining, [e.originator_version for e in events]

    before, after, versions = on_loop(nats_server.url, work)
    assert not before and after and versions == [1, 2, 3]
