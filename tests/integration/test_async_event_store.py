"""The async event store (events/store/aio.py) from an asyncio loop of its own, as the GPU runner will use it:
its own NATS connection, no bridge thread, the same stream and messages as the thread-side recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar
from uuid import UUID, uuid4

import nats
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from aidraw.services import NatsServer
from events.ids import aggregate_uuid
from events.store.aio import AsyncJetStreamStore
from events.store.bridge import NatsBridge
from events.store.jetstream import JetStreamApplicationRecorder
from events.store.protocol import AsyncEventStore, Claim, ClaimConflict, DuplicateRequest, claim_subject
from events.store.stream import ensure_stream

T = TypeVar("T")


@pytest.fixture(scope="module")
def bridge(nats_server: NatsServer) -> Iterator[NatsBridge]:
    bridge = NatsBridge(nats_server.url)
    yield bridge
    bridge.close()


@pytest.fixture
def prefix(bridge: NatsBridge, stream_name: str) -> str:
    ensure_stream(bridge, stream_name, stream_name.lower())
    return stream_name.lower()


def on_own_loop(nats_url: str, work: Callable[[nats.NATS], Awaitable[T]]) -> T:
    """Run `work` on a fresh asyncio loop with a connection of its own (not the bridge's)."""
    async def main() -> T:
        nc = await nats.connect(nats_url)
        try:
            return await work(nc)
        finally:
            await nc.close()

    return asyncio.run(main())


def ev(version: int, originator: UUID | None = None) -> StoredEvent:
    return StoredEvent(originator_id=originator or aggregate_uuid("task", 5), originator_version=version,
                       topic="events.tasks:TaskProgressed", state=b'{"step": %d}' % version)


def test_what_the_async_store_appends_the_thread_side_recorder_reads_back(
    nats_server: NatsServer, bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    async def work(nc: nats.NATS) -> tuple[list[int], list[int], int]:
        store: AsyncEventStore = AsyncJetStreamStore(nc, stream_name, prefix)
        first = await store.insert_events([ev(1), ev(2)])
        second = await store.insert_events([ev(3)])
        return first, second, await store.last_sequence()

    first, second, last = on_own_loop(nats_server.url, work)
    assert (first, second, last) == ([1, 2], [3], 3)
    recorder = JetStreamApplicationRecorder(bridge, stream_name, prefix)
    assert [e.state for e in recorder.select_events(aggregate_uuid("task", 5))] == [
        b'{"step": 1}', b'{"step": 2}', b'{"step": 3}']


def test_a_stale_expectation_is_retried_and_a_taken_version_refused(
    nats_server: NatsServer, bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    JetStreamApplicationRecorder(bridge, stream_name, prefix).insert_events([ev(1)])  # another writer

    async def work(nc: nats.NATS) -> list[int]:
        store = AsyncJetStreamStore(nc, stream_name, prefix)  # knows nothing: assumes the subject is empty
        with pytest.raises(IntegrityError):
            await store.insert_events([ev(1)])
        return await store.insert_events([ev(2)])  # refused once (stale), re-read, sent again

    assert on_own_loop(nats_server.url, work) == [2]


def test_concurrent_appends_racing_for_one_claim_have_one_winner(
    nats_server: NatsServer, bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    name = claim_subject(prefix, "taskslot", "gpu-0")

    async def work(nc: nats.NATS) -> list[object]:
        stores = [AsyncJetStreamStore(nc, stream_name, prefix) for _ in range(8)]
        return await asyncio.gather(
            *(s.insert_events([ev(1, uuid4())], claims=[Claim(name, str(n))]) for n, s in enumerate(stores)),
            return_exceptions=True)

    results = on_own_loop(nats_server.url, work)
    winners = [n for n, r in enumerate(results) if isinstance(r, list)]
    assert len(winners) == 1
    assert all(isinstance(r, ClaimConflict) for r in results if not isinstance(r, list))
    assert JetStreamApplicationRecorder(bridge, stream_name, prefix).read_claim(name) == str(winners[0])
    assert JetStreamApplicationRecorder(bridge, stream_name, prefix).last_sequence() == 2  # the winner's event+claim


def test_a_repeated_key_is_a_duplicate_also_within_the_servers_window(
    nats_server: NatsServer, stream_name: str, prefix: str
) -> None:
    async def work(nc: nats.NATS) -> tuple[DuplicateRequest, DuplicateRequest, int]:
        store = AsyncJetStreamStore(nc, stream_name, prefix)
        await store.insert_events([ev(1)], idempotency_key="run-1")
        with pytest.raises(DuplicateRequest) as with_events:
            await store.insert_events([ev(2)], idempotency_key="run-1")
        await store.insert_events([], idempotency_key="lone")
        with pytest.raises(DuplicateRequest) as lone:  # a lone record: the server's duplicate window sees it
            await store.insert_events([], idempotency_key="lone")
        return with_events.value, lone.value, await store.last_sequence()

    first, lone, last = on_own_loop(nats_server.url, work)
    assert first.events == [(aggregate_uuid("task", 5), 1)] and first.sequence == 2
    assert lone.events == [] and lone.sequence == 3 and last == 3


def test_no_stream_is_an_operational_error(nats_server: NatsServer, stream_name: str) -> None:
    async def work(nc: nats.NATS) -> None:
        store = AsyncJetStreamStore(nc, stream_name + "_MISSING", "nowhere", timeout=2)
        with pytest.raises(OperationalError):
            await store.insert_events([ev(1)])
        with pytest.raises(OperationalError):
            await store.last_sequence()

    on_own_loop(nats_server.url, work)
