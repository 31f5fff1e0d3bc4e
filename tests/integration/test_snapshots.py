"""Snapshots of long histories (a user's likes) on a real nats-server: loading reads the latest snapshot and
only the events after it, and gives exactly the state a full replay gives."""

from __future__ import annotations

import dataclasses
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from eventsourcing.domain import CanMutateAggregate

from aidraw.services import NatsServer
from command.app import CommandApp
from command.likes import SNAPSHOT_EVERY, Likes, _likes_of
from events.ids import aggregate_uuid
from events.store.jetstream import JetStreamAggregateRecorder, JetStreamApplicationRecorder
from events.store.snapshots import EVENTS_SEQ, JetStreamSnapshotRecorder
from infra.settings import Settings


@pytest.fixture
def app(nats_server: NatsServer, stream_name: str) -> Iterator[CommandApp]:
    settings = dataclasses.replace(Settings.from_env(), stream_name=stream_name, subject_prefix=stream_name.lower())
    app = CommandApp(settings, nats_server.url)
    yield app
    app.close()


def _events_recorder(app: CommandApp) -> JetStreamApplicationRecorder:
    recorder = app.recorder
    assert isinstance(recorder, JetStreamApplicationRecorder)
    return recorder


def _snapshot_recorder(app: CommandApp) -> JetStreamSnapshotRecorder:
    assert app.snapshots is not None
    recorder = app.snapshots.recorder
    assert isinstance(recorder, JetStreamSnapshotRecorder)
    return recorder


def _like(app: CommandApp, user: int, images: range) -> None:
    likes = _likes_of(app, user)
    for image in images:
        likes.like(image)
    app.store(likes)


def _reads(recorder: JetStreamAggregateRecorder, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(first sequence asked for, messages read) of every subject read from now on."""
    seen: list[tuple[int, int]] = []
    read = recorder._read_from

    def counted(subject: str, seq: int) -> list:
        msgs = read(subject, seq)
        seen.append((seq, len(msgs)))
        return msgs

    monkeypatch.setattr(recorder, "_read_from", counted)
    return seen


def _replayed(app: CommandApp, user: int) -> set[int]:
    """The state from every event, snapshots ignored."""
    state: Likes | None = None
    for event in app.events.get(aggregate_uuid("likes", user)):
        assert isinstance(event, CanMutateAggregate)
        state = event.mutate(state)
    assert state is not None
    return set(state.image_ids)


def test_loading_reads_the_latest_snapshot_and_only_the_events_after_it(
        app: CommandApp, monkeypatch: pytest.MonkeyPatch) -> None:
    assert SNAPSHOT_EVERY == 100
    for start in range(1, 1001, 250):  # batches: snapshots fall inside them, not only at their ends
        _like(app, 7, range(start, start + 250))
    for image in range(5000, 5030):  # and one by one
        _like(app, 7, range(image, image + 1))
    uuid = aggregate_uuid("likes", 7)
    snapshots = _snapshot_recorder(app).select_events(uuid)
    assert [s.originator_version for s in snapshots] == list(range(100, 1001, 100))
    last = app.recorder.select_events(uuid, desc=True, limit=1)[0].originator_version
    assert last == 1031  # LikesStarted, 1,000 likes in batches, 30 one by one

    reads = _reads(_events_recorder(app), monkeypatch)
    loaded = _likes_of(app, 7)
    assert reads == [(reads[0][0], 31)]  # the 31 events after the snapshot at version 1000, nothing before
    assert loaded.version == 1031
    assert loaded.image_ids == _replayed(app, 7) == set(range(1, 1001)) | set(range(5000, 5030))


def test_every_snapshot_message_says_where_its_version_is(app: CommandApp) -> None:
    _like(app, 8, range(1, 451))
    uuid = aggregate_uuid("likes", 8)
    recorder = _snapshot_recorder(app)
    events = _events_recorder(app)
    from events.store.directget import get_range, get_seq

    msgs = recorder._run(get_range(recorder.bridge.nc, recorder.stream, subjects=recorder.subject_of(uuid), seq=1,
                                   timeout=5))
    assert [int(m.headers["Es-Version"]) for m in msgs] == [100, 200, 300, 400]
    for msg in msgs:
        version, seq = int(msg.headers["Es-Version"]), int(msg.headers[EVENTS_SEQ])
        # What the events stream holds at that sequence, read back from the server (not the recorder's hints):
        # this aggregate's event at the snapshot's version.
        stored = events._run(get_seq(events.bridge.nc, events.stream, seq, timeout=5))
        assert stored is not None and stored.subject == events.subject_of(uuid)
        assert int(stored.headers["Es-Version"]) == version


def test_a_wrong_position_costs_a_full_read_not_a_wrong_state(app: CommandApp, nats_server: NatsServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _like(app, 9, range(1, 131))
    fresh = CommandApp(app.settings, nats_server.url)
    try:
        uuid = aggregate_uuid("likes", 9)
        events = _events_recorder(fresh)
        events.know_position(events.subject_of(uuid), 100, 5)
        monkeypatch.setattr(type(_snapshot_recorder(fresh)), "_stored_event",
                            JetStreamAggregateRecorder._stored_event)  # the snapshot's own hint is not heard
        reads = _reads(events, monkeypatch)
        loaded = _likes_of(fresh, 9)
        assert loaded.image_ids == set(range(1, 131))
        assert reads[-1] == (1, 131)  # fell back to reading the whole subject
    finally:
        fresh.close()


def test_other_aggregates_skip_the_snapshot_lookup(app: CommandApp, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _snapshot_recorder(app)
    asked: list[object] = []

    def run(coro: Coroutine[Any, Any, object]) -> None:
        asked.append(coro)
        coro.close()

    monkeypatch.setattr(recorder, "_run", run)
    assert recorder.select_events(aggregate_uuid("tag", 5), desc=True, limit=1) == []
    assert recorder.select_events(aggregate_uuid("image", 6), desc=True, limit=1) == []
    assert asked == []  # no round trip to NATS


def test_a_snapshot_that_cannot_be_stored_fails_nothing(app: CommandApp) -> None:
    _like(app, 10, range(1, 201))  # snapshots at 100 and 200
    uuid = aggregate_uuid("likes", 10)
    app.take_snapshot(uuid, 100)  # as a slow process would, after another stored the one at 200: refused, quietly
    snapshots = _snapshot_recorder(app).select_events(uuid)
    assert [s.originator_version for s in snapshots] == [100, 200]
    _like(app, 10, range(201, 202))
    assert _likes_of(app, 10).image_ids == set(range(1, 202))
