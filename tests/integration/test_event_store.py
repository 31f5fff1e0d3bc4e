"""The event store on a real nats-server: atomicity, optimistic concurrency under contention, idempotency
keys, uniqueness claims, the message format the projectors rely on, and the bridge's guards."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, StoredEvent

from aidraw.services import NatsServer, free_port
from events.ids import aggregate_uuid, subject_for
from events.store import batch as jsbatch
from events.store.batch import JetStreamAPIError, OutMsg
from events.store.bridge import NatsBridge, NatsConnectError
from events.store.directget import get_last
from events.store.jetstream import JetStreamApplicationRecorder
from events.store.protocol import Claim, ClaimConflict, DuplicateRequest, OutcomeUnknown, claim_subject
from events.store.stream import ensure_stream, stream_last_sequence


@pytest.fixture(scope="module")
def bridge(nats_server: NatsServer) -> Iterator[NatsBridge]:
    bridge = NatsBridge(nats_server.url)
    yield bridge
    bridge.close()


@pytest.fixture
def prefix(stream_name: str) -> str:
    return stream_name.lower()


@pytest.fixture
def recorder(bridge: NatsBridge, stream_name: str, prefix: str) -> JetStreamApplicationRecorder:
    ensure_stream(bridge, stream_name, prefix)
    return JetStreamApplicationRecorder(bridge, stream_name, prefix)


def ev(originator_id: UUID, version: int, topic: str = "t") -> StoredEvent:
    return StoredEvent(originator_id=originator_id, originator_version=version, topic=topic,
                       state=f'{{"v": {version}}}'.encode())


class Counter(Aggregate):
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


@pytest.fixture
def app(nats_server: NatsServer, stream_name: str, prefix: str) -> Iterator[Application[UUID]]:
    application: Application[UUID] = Application(env={
        "PERSISTENCE_MODULE": "events.store.jetstream",
        "NATS_URL": nats_server.url,
        "NATS_STREAM": stream_name,
        "NATS_SUBJECT_PREFIX": prefix,
    })
    yield application
    application.close()


# ---- the message format (projectors read it directly) ----

def test_one_message_per_event_with_the_documented_subject_headers_and_body(
    recorder: JetStreamApplicationRecorder, bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    oid = aggregate_uuid("tag", 42)
    assert recorder.insert_events([ev(oid, 1, "mod:Tag.Created")]) == [1]
    msg = bridge.run(get_last(bridge.nc, stream_name, subject_for(prefix, oid), 5))
    assert msg is not None
    assert msg.subject == f"{prefix}.tag.42"
    assert msg.seq == 1
    assert msg.headers["Es-Topic"] == "mod:Tag.Created"
    assert msg.headers["Es-Version"] == "1"
    assert msg.headers["Es-Id"] == str(oid)
    assert msg.data == b'{"v": 1}'
    assert recorder.message_time(1) == pytest.approx(time.time(), abs=30)
    assert recorder.message_time(2) is None


def test_ensure_stream_sets_the_designed_configuration_and_updates_it(
    bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    ensure_stream(bridge, stream_name, prefix)
    ensure_stream(bridge, stream_name, prefix, duplicate_window_s=30)  # exists: updated, not refused
    config = bridge.run(bridge.js.stream_info(stream_name)).config
    assert config.subjects == [f"{prefix}.>"]
    assert (config.storage, config.discard) == ("file", "new")
    assert config.deny_delete and config.deny_purge and config.allow_atomic and config.allow_direct
    assert config.duplicate_window == 30


# ---- atomicity and optimistic concurrency ----

def test_a_batch_with_one_stale_expectation_stores_nothing(
    recorder: JetStreamApplicationRecorder, bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    a, b = uuid4(), uuid4()
    recorder.insert_events([ev(a, 1), ev(b, 1)])
    stale = JetStreamApplicationRecorder(bridge, stream_name, prefix)
    stale.select_events(a)
    stale.select_events(b)  # the second recorder now expects b's last sequence to be 2
    recorder.insert_events([ev(b, 2)])  # ... which it no longer is
    before = stream_last_sequence(bridge, stream_name)

    with pytest.raises(IntegrityError):
        stale.insert_events([ev(a, 2), ev(b, 2)])

    assert stream_last_sequence(bridge, stream_name) == before
    assert [e.originator_version for e in recorder.select_events(a)] == [1]
    assert [e.originator_version for e in recorder.select_events(b)] == [1, 2]


def test_the_server_refuses_a_whole_batch_whose_second_subject_is_stale(
    recorder: JetStreamApplicationRecorder, bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    """The server itself, without the recorder's client-side checks: all or nothing."""
    recorder.insert_events([ev(uuid4(), 1)])
    msgs = [OutMsg(f"{prefix}.es.{uuid4().hex}", b"x", {"Nats-Expected-Last-Subject-Sequence": "0"}),
            OutMsg(f"{prefix}.es.{uuid4().hex}", b"y", {"Nats-Expected-Last-Subject-Sequence": "1"})]
    with pytest.raises(JetStreamAPIError) as refused:
        bridge.run(jsbatch.publish(bridge.nc, msgs, 5))
    assert refused.value.err_code == jsbatch.WRONG_LAST_SEQUENCE
    assert stream_last_sequence(bridge, stream_name) == 1


def test_a_stale_cache_is_not_a_conflict(
    recorder: JetStreamApplicationRecorder, bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    a = uuid4()
    recorder.insert_events([ev(a, 1)])
    other = JetStreamApplicationRecorder(bridge, stream_name, prefix)
    other.select_events(a)  # caches version 1
    recorder.insert_events([ev(a, 2)])
    assert other.insert_events([ev(a, 3)]) == [3]  # 3 > 2: stored after a re-read, not refused
    with pytest.raises(IntegrityError):
        other.insert_events([ev(a, 3)])
    assert [e.originator_version for e in recorder.select_events(a)] == [1, 2, 3]


def test_versions_must_rise_within_one_write(recorder: JetStreamApplicationRecorder) -> None:
    a = uuid4()
    with pytest.raises(IntegrityError):
        recorder.insert_events([ev(a, 2), ev(a, 1)])
    assert recorder.select_events(a) == []


def test_twenty_concurrent_writers_one_winner_per_version(app: Application[UUID]) -> None:
    counter = Counter()
    app.save(counter)
    writers, saves_each = 20, 5
    conflicts = 0
    lock = threading.Lock()
    start = threading.Barrier(writers)

    def writer() -> int:
        nonlocal conflicts
        start.wait()
        done = 0
        while done < saves_each:
            loaded: Counter = app.repository.get(counter.id)
            loaded.increment()
            try:
                app.save(loaded)
            except IntegrityError:
                with lock:
                    conflicts += 1
                continue
            done += 1
        return done

    with ThreadPoolExecutor(writers) as pool:
        successes = sum(pool.map(lambda _: writer(), range(writers)))

    stored = app.recorder.select_events(counter.id)
    versions = [e.originator_version for e in stored]
    assert versions == list(range(1, 2 + successes))  # unique and contiguous: one winner per version
    assert successes == writers * saves_each
    final: Counter = app.repository.get(counter.id)
    assert final.count == successes == len(stored) - 1
    assert final.version == versions[-1]
    assert conflicts > 0  # the writers really did collide


# ---- idempotency keys ----

def test_a_repeated_idempotency_key_stores_once_and_reports_the_first_request(
    app: Application[UUID], bridge: NatsBridge, stream_name: str
) -> None:
    first = Counter()
    [recording] = app.save(first, idempotency_key="req-1")
    after_first = stream_last_sequence(bridge, stream_name)
    assert after_first == recording.notification.id + 1  # the event, then the record

    with pytest.raises(DuplicateRequest) as dup:
        app.save(Counter(), idempotency_key="req-1")

    assert dup.value.events == [(first.id, 1)]
    assert dup.value.sequence == after_first
    assert stream_last_sequence(bridge, stream_name) == after_first
    # The record alone (a plain publish, not a batch) is refused the same way.
    with pytest.raises(DuplicateRequest):
        app.recorder.insert_events([], idempotency_key="req-1")
    assert stream_last_sequence(bridge, stream_name) == after_first
    app.save(Counter(), idempotency_key="req-2")
    assert stream_last_sequence(bridge, stream_name) == after_first + 2


def test_idempotency_is_remembered_past_the_duplicate_window(
    bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    ensure_stream(bridge, stream_name, prefix, duplicate_window_s=0.5)
    recorder = JetStreamApplicationRecorder(bridge, stream_name, prefix)
    a = uuid4()
    recorder.insert_events([ev(a, 1)], idempotency_key="late")
    time.sleep(0.8)
    with pytest.raises(DuplicateRequest) as dup:
        recorder.insert_events([ev(uuid4(), 1)], idempotency_key="late")
    assert dup.value.events == [(a, 1)]
    assert stream_last_sequence(bridge, stream_name) == 2


# ---- uniqueness claims ----

def test_a_claim_held_by_another_owner_stores_nothing(
    recorder: JetStreamApplicationRecorder, bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    name = claim_subject(prefix, "tagname", "cats")
    a, b = uuid4(), uuid4()
    recorder.insert_events([ev(a, 1)], claims=[Claim(name, str(a))])
    assert recorder.read_claim(name) == str(a)
    before = stream_last_sequence(bridge, stream_name)

    with pytest.raises(ClaimConflict) as conflict:
        recorder.insert_events([ev(b, 1)], claims=[Claim(name, str(b))])

    assert conflict.value.subject == name
    assert conflict.value.owner == str(a)
    assert stream_last_sequence(bridge, stream_name) == before
    assert recorder.select_events(b) == []


def test_claiming_again_as_the_holder_appends_nothing_for_the_claim(
    recorder: JetStreamApplicationRecorder, prefix: str
) -> None:
    name = claim_subject(prefix, "tagname", "dogs")
    a = uuid4()
    recorder.insert_events([ev(a, 1)], claims=[Claim(name, str(a))])
    assert recorder.insert_events([ev(a, 2)], claims=[Claim(name, str(a))]) == [3]
    assert recorder.last_sequence() == 3  # the event only
    assert [n.id for n in recorder.select_notifications(None, 10)] == [1, 3]  # claims are not notifications


def test_release_then_claim_by_another_owner(recorder: JetStreamApplicationRecorder, prefix: str) -> None:
    name = claim_subject(prefix, "tagname", "birds")
    a, b = uuid4(), uuid4()
    recorder.insert_events([ev(a, 1)], claims=[Claim(name, str(a))])
    recorder.insert_events([ev(b, 1)], releases=[Claim(name, str(b))])  # not the holder: skipped
    assert recorder.read_claim(name) == str(a)

    recorder.insert_events([ev(a, 2)], releases=[Claim(name, str(a))])
    assert recorder.read_claim(name) is None
    recorder.insert_events([ev(b, 2)], claims=[Claim(name, str(b))])
    assert recorder.read_claim(name) == str(b)
    history = [m.headers.get("Aidraw-Claim") for m in recorder._read_all(name)]
    assert history == ["held", "released", "held"]


def test_two_concurrent_claimers_of_a_free_subject_one_wins(
    recorder: JetStreamApplicationRecorder, bridge: NatsBridge, stream_name: str, prefix: str
) -> None:
    for round_ in range(10):
        name = claim_subject(prefix, "email", f"someone{round_}@example.org")
        contenders = [uuid4(), uuid4()]
        start = threading.Barrier(2)

        def claim(oid: UUID, name: str = name, start: threading.Barrier = start) -> str:
            # Separate recorders, as in two API processes.
            mine = JetStreamApplicationRecorder(bridge, stream_name, prefix)
            start.wait()
            try:
                mine.insert_events([ev(oid, 1)], claims=[Claim(name, str(oid))])
            except ClaimConflict:
                return "lost"
            return "won"

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(claim, contenders))
        assert sorted(outcomes) == ["lost", "won"]
        winner = contenders[outcomes.index("won")]
        assert recorder.read_claim(name) == str(winner)
        loser = contenders[outcomes.index("lost")]
        assert recorder.select_events(loser) == []


# ---- failures ----

def test_no_answer_means_outcome_unknown(bridge: NatsBridge) -> None:
    """A subscriber that swallows publishes stands in for a server that stored a write and then went quiet."""
    bridge.run(bridge.nc.subscribe("blackhole.>"))
    recorder = JetStreamApplicationRecorder(bridge, "NO_SUCH_STREAM", "blackhole", timeout=0.2)
    with pytest.raises(OutcomeUnknown, match="may or may not"):
        recorder.insert_events([ev(uuid4(), 1)])
    with pytest.raises(OutcomeUnknown):
        recorder.insert_events([ev(uuid4(), 1), ev(uuid4(), 1)])


def test_bridge_guards(bridge: NatsBridge) -> None:
    async def sleepy() -> None:
        await asyncio.sleep(5)

    with pytest.raises(TimeoutError):
        bridge.run(sleepy(), timeout=0.05)

    async def reenter() -> None:
        bridge.run(asyncio.sleep(0))

    with pytest.raises(RuntimeError, match="deadlock"):
        bridge.run(reenter())
    assert bridge.run(asyncio.sleep(0, result=7)) == 7


def test_unreachable_server_says_what_to_do() -> None:
    with pytest.raises(NatsConnectError, match=r"cannot reach NATS at nats://\*\*\*@127.0.0.1:\d+.*AIDRAW_NATS_URL"
                       ) as raised:
        NatsBridge(f"nats://user:secret@127.0.0.1:{free_port()}", connect_timeout=1)
    # The reason is said (it was empty: "at nats://...: ; is it running?"), and the password is not.
    assert "within 1 s (" in str(raised.value) and "refused" in str(raised.value).lower(), raised.value
    assert "secret" not in str(raised.value)


def test_subscription_follows_the_stream_and_skips_claims(
    recorder: JetStreamApplicationRecorder, prefix: str
) -> None:
    a = uuid4()
    recorder.insert_events([ev(a, 1, "created")], claims=[Claim(claim_subject(prefix, "k", "v"), "x")])
    recorder.insert_events([ev(a, 2, "renamed")], idempotency_key="k")
    with recorder.subscribe(gt=None) as subscription:
        seen = [(n.id, n.topic) for _, n in zip(range(2), subscription, strict=False)]
    assert seen == [(1, "created"), (3, "renamed")]
    with recorder.subscribe(gt=1, topics=["renamed"]) as subscription:
        assert next(subscription).id == 3


def test_factory_has_no_tracking_or_process_recorder(app: Application[UUID]) -> None:
    with pytest.raises(NotImplementedError, match="PostgreSQL"):
        app.factory.tracking_recorder()
    with pytest.raises(NotImplementedError, match="atomically"):
        app.factory.process_recorder()
