"""One contract for every event store: eventsourcing's own recorder test cases, and the rules of
events/store/protocol.py (claims, releases, idempotency keys, rising versions, all-or-nothing appends), run
over JetStream on a real nats-server, over the in-memory store, and (the rules) over the async JetStream store.

The library's tests hard-code versions and notification ids from 1, so each test gets a fresh stream (and a
subject prefix of its own, the stream name lowercased, so streams never overlap). They are unittest
TestCases: an autouse fixture hands them the server's bridge and the stream name.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)

from aidraw.services import NatsServer
from events.store.aio import AsyncJetStreamStore
from events.store.bridge import NatsBridge
from events.store.jetstream import JetStreamAggregateRecorder, JetStreamApplicationRecorder
from events.store.memory import MemoryAggregateRecorder, MemoryApplicationRecorder
from events.store.protocol import (
    AsyncEventStore,
    Claim,
    ClaimConflict,
    DuplicateRequest,
    EventStore,
    IdempotencyArg,
    RequestKey,
    claim_subject,
)
from events.store.stream import ensure_stream

T = TypeVar("T")


@pytest.fixture(scope="module")
def bridge(nats_server: NatsServer) -> Iterator[NatsBridge]:
    bridge = NatsBridge(nats_server.url)
    yield bridge
    bridge.close()


# ---- eventsourcing's recorder test cases, over each store ----

class JetStreamCase:
    bridge: NatsBridge
    stream: str

    @pytest.fixture(autouse=True)
    def _jetstream(self, bridge: NatsBridge, stream_name: str) -> None:
        self.bridge = bridge
        self.stream = stream_name

    def _where(self) -> tuple[NatsBridge, str, str]:
        prefix = self.stream.lower()
        ensure_stream(self.bridge, self.stream, prefix)
        return self.bridge, self.stream, prefix


class TestJetStreamAggregateRecorder(JetStreamCase, AggregateRecorderTestCase):
    def create_recorder(self) -> JetStreamAggregateRecorder:
        return JetStreamAggregateRecorder(*self._where())


class TestJetStreamApplicationRecorder(
    JetStreamCase, ApplicationRecorderTestCase[JetStreamApplicationRecorder]
):
    def create_recorder(self) -> JetStreamApplicationRecorder:
        return JetStreamApplicationRecorder(*self._where())

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestJetStreamNonInterleavingNotificationIDs(JetStreamCase, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> JetStreamApplicationRecorder:
        return JetStreamApplicationRecorder(*self._where())


class TestMemoryAggregateRecorder(AggregateRecorderTestCase):
    def create_recorder(self) -> MemoryAggregateRecorder:
        return MemoryAggregateRecorder()


class TestMemoryApplicationRecorder(ApplicationRecorderTestCase[MemoryApplicationRecorder]):
    def create_recorder(self) -> MemoryApplicationRecorder:
        return MemoryApplicationRecorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestMemoryNonInterleavingNotificationIDs(NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> MemoryApplicationRecorder:
        return MemoryApplicationRecorder()


del AggregateRecorderTestCase, ApplicationRecorderTestCase, NonInterleavingNotificationIDsBaseCase


# ---- the rules of events/store/protocol.py, over each store ----

class OnTheBridge:
    """The async store driven from a thread, on the bridge's loop: the contract below calls stores from
    threads. (tests/integration/test_async_event_store.py drives it from asyncio itself.)"""

    def __init__(self, store: AsyncEventStore, bridge: NatsBridge) -> None:
        self.store = store
        self.bridge = bridge

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.bridge.run(coro, 20)

    def insert_events(self, stored_events: Sequence[StoredEvent], *, claims: Sequence[Claim] = (),
                      releases: Sequence[Claim] = (), idempotency_key: IdempotencyArg = None) -> list[int]:
        return self._run(self.store.insert_events(stored_events, claims=claims, releases=releases,
                                                  idempotency_key=idempotency_key))

    def select_events(self, originator_id: UUID | str) -> list[StoredEvent]:
        return self._run(self.store.select_events(originator_id))

    def read_claim(self, subject: str) -> str | None:
        return self._run(self.store.read_claim(subject))

    def read_subject(self, subject: str) -> list[Notification]:
        return self._run(self.store.read_subject(subject))

    def last_sequence(self) -> int:
        return self._run(self.store.last_sequence())


@pytest.fixture(params=["jetstream", "memory", "async-jetstream"])
def store(request: pytest.FixtureRequest, stream_name: str) -> tuple[Any, str]:
    """(a store, its subject prefix)."""
    prefix = stream_name.lower()
    if request.param == "memory":
        memory: EventStore = MemoryApplicationRecorder(prefix)
        return memory, prefix
    bridge: NatsBridge = request.getfixturevalue("bridge")
    ensure_stream(bridge, stream_name, prefix)
    if request.param == "jetstream":
        jetstream: EventStore = JetStreamApplicationRecorder(bridge, stream_name, prefix)
        return jetstream, prefix
    async_store: AsyncEventStore = AsyncJetStreamStore(bridge.nc, stream_name, prefix)
    return OnTheBridge(async_store, bridge), prefix


def event(originator: UUID, version: int, state: bytes = b"{}") -> StoredEvent:
    return StoredEvent(originator_id=originator, originator_version=version, topic="tests:Happened", state=state)


class TestEventStoreContract:
    def test_appends_get_rising_sequences_and_read_back_in_order(self, store: tuple[Any, str]) -> None:
        log, _ = store
        a, b = uuid4(), uuid4()
        first = log.insert_events([event(a, 1), event(b, 1)])
        second = log.insert_events([event(a, 2, b'{"n":2}')])
        assert first == [1, 2] and second == [3]
        assert [(e.originator_version, e.state) for e in log.select_events(a)] == [(1, b"{}"), (2, b'{"n":2}')]
        assert log.last_sequence() == 3

    def test_a_version_not_above_the_last_one_is_refused_and_nothing_is_stored(
        self, store: tuple[Any, str]
    ) -> None:
        log, _ = store
        a, b = uuid4(), uuid4()
        log.insert_events([event(a, 1), event(a, 2)])
        for stale in (1, 2):
            with pytest.raises(IntegrityError):
                log.insert_events([event(b, 1), event(a, stale)])
        assert log.select_events(b) == []
        assert log.last_sequence() == 2

    def test_a_claim_held_by_another_owner_refuses_the_whole_append(self, store: tuple[Any, str]) -> None:
        log, prefix = store
        name = claim_subject(prefix, "tagname", "cats")
        a, b = uuid4(), uuid4()
        log.insert_events([event(a, 1)], claims=[Claim(name, "1")])
        before = log.last_sequence()
        with pytest.raises(ClaimConflict) as refused:
            log.insert_events([event(b, 1), event(b, 2)], claims=[Claim(name, "2")])
        assert refused.value.owner == "1" and refused.value.subject == name
        assert log.select_events(b) == [] and log.last_sequence() == before
        assert log.read_claim(name) == "1"

    def test_claiming_what_one_holds_changes_nothing_and_only_the_holder_releases(
        self, store: tuple[Any, str]
    ) -> None:
        log, prefix = store
        name = claim_subject(prefix, "username", "ann")
        a = uuid4()
        assert log.read_claim(name) is None
        log.insert_events([event(a, 1)], claims=[Claim(name, "7")])
        log.insert_events([event(a, 2)], claims=[Claim(name, "7")])  # already ours: no claim message
        assert log.last_sequence() == 3
        log.insert_events([event(a, 3)], releases=[Claim(name, "8")])  # not the holder: no release message
        assert log.read_claim(name) == "7" and log.last_sequence() == 4
        log.insert_events([event(a, 4)], releases=[Claim(name, "7")])
        assert log.read_claim(name) is None
        log.insert_events([], claims=[Claim(name, "8")])
        assert log.read_claim(name) == "8"

    def test_a_repeated_idempotency_key_stores_nothing_and_names_the_first_write(
        self, store: tuple[Any, str]
    ) -> None:
        log, _ = store
        a, b = uuid4(), uuid4()
        log.insert_events([event(a, 1), event(a, 2)], idempotency_key=RequestKey("key-1", "digest-1"))
        stored = log.last_sequence()
        with pytest.raises(DuplicateRequest) as repeated:
            log.insert_events([event(b, 1)], idempotency_key=RequestKey("key-1", "digest-2"))
        assert repeated.value.events == [(a, 1), (a, 2)]
        assert repeated.value.sequence == stored  # the record is the write's last message
        assert not repeated.value.same_request("digest-2") and repeated.value.same_request("digest-1")
        with pytest.raises(DuplicateRequest):
            log.insert_events([], idempotency_key="key-1")  # a plain key is the same key
        assert log.select_events(b) == [] and log.last_sequence() == stored

    def test_claims_and_records_take_sequences_but_are_not_events(self, store: tuple[Any, str]) -> None:
        log, prefix = store
        a = uuid4()
        subject = f"{prefix}.es.{a.hex}"
        log.insert_events([event(a, 1)], claims=[Claim(claim_subject(prefix, "k", "v"), "1")],
                          idempotency_key="k")
        log.insert_events([event(a, 2)])
        history = log.read_subject(subject)
        assert [(n.id, n.originator_version) for n in history] == [(1, 1), (4, 2)]
        assert log.read_subject(claim_subject(prefix, "k", "v")) == []

    def test_versions_within_one_append_must_rise(self, store: tuple[Any, str]) -> None:
        log, _ = store
        a = uuid4()
        with pytest.raises(IntegrityError):
            log.insert_events([event(a, 2), event(a, 1)])
        assert log.last_sequence() == 0


@pytest.mark.parametrize("kind", ["jetstream", "memory"])
def test_message_time_is_when_it_was_stored(kind: str, request: pytest.FixtureRequest, stream_name: str) -> None:
    prefix = stream_name.lower()
    log: EventStore
    if kind == "memory":
        log = MemoryApplicationRecorder(prefix)
    else:
        bridge: NatsBridge = request.getfixturevalue("bridge")
        ensure_stream(bridge, stream_name, prefix)
        log = JetStreamApplicationRecorder(bridge, stream_name, prefix)
    log.insert_events([event(uuid4(), 1)])
    assert log.message_time(1) == pytest.approx(time.time(), abs=30)
    assert log.message_time(2) is None
