"""Snapshots on a stream of their own (`<stream>_SNAPSHOTS`), each pointing into the events stream.

An aggregate with a long history (a user's likes) is loaded from its latest snapshot plus the events after it.
Reading "the events after version v" from a subject would still mean reading the whole subject, unless one knows
where version v sits in the stream. So a snapshot's message carries `Aidraw-Events-Seq`, the stream sequence of
the event at the snapshot's version. It is known exactly: the snapshot is taken right after that event was
stored, and the events recorder remembers where it stored what it wrote lately. Reading the snapshot hands the
position to the events recorder, which then reads from there (events/store/jetstream.py, `select_events`). A missing
or wrong position only costs a full read.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from events.ids import split_uuid
from events.store.bridge import NatsBridge
from events.store.directget import StoredMsg
from events.store.jetstream import JetStreamAggregateRecorder

EVENTS_SEQ = "Aidraw-Events-Seq"
# The kinds whose aggregates are snapshotted (command/likes.py sets the interval). Loading any other aggregate
# skips the snapshot lookup, a round trip to NATS on every command.
SNAPSHOTTED_KINDS = frozenset({"likes"})


class JetStreamSnapshotRecorder(JetStreamAggregateRecorder):
    def __init__(self, bridge: NatsBridge, stream: str, prefix: str, events: JetStreamAggregateRecorder, *,
                 timeout: float = 10.0) -> None:
        super().__init__(bridge, stream, prefix, timeout=timeout)
        self.events = events

    def select_events(self, originator_id: UUID | str, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        split = split_uuid(originator_id) if isinstance(originator_id, UUID) else None
        if split is not None and split[0] not in SNAPSHOTTED_KINDS:
            return []
        return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)

    def _extra_headers(self, stored_events: Sequence[StoredEvent]) -> list[dict[str, str]] | None:
        headers: list[dict[str, str]] = []
        for snapshot in stored_events:
            seq = self.events.position(snapshot.originator_id, snapshot.originator_version)
            headers.append({EVENTS_SEQ: str(seq)} if seq is not None else {})
        return headers

    def _stored_event(self, msg: StoredMsg) -> StoredEvent:
        snapshot = super()._stored_event(msg)
        seq = msg.headers.get(EVENTS_SEQ)
        if seq is not None and seq.isdigit():
            self.events.know_position(self.events.subject_of(snapshot.originator_id), snapshot.originator_version,
                                      int(seq))
        return snapshot
