"""An event store in memory (`PERSISTENCE_MODULE=events.store.memory`), for unit tests of command handlers.

It is the JetStream stream in a list: every append is a run of messages (events, claim messages, an idempotency
record) given consecutive sequences, planned by the same `WritePlan` as the JetStream recorders
(events/store/writeplan.py), so versions, claims, releases and idempotency keys give the same answers. A
lock makes each append atomic; the plan is decided under it from the subjects' current last messages, so there
is no stale expectation to retry. The recorder contract tests (tests/contract/test_event_stores.py) run over it
and over JetStream alike. Nothing is kept across processes.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
    Subscription,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType

from events.ids import is_event_subject, subject_for
from events.store.batch import OutMsg
from events.store.claims import Claim, IdempotencyArg
from events.store.directget import StoredMsg
from events.store.writeplan import EXPECTED, ID, TOPIC, VERSION, VersionCache, holder, plan_write


class MemoryLog:
    """The stream: messages in sequence order, and each subject's messages."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.messages: list[StoredMsg] = []
        self.times: list[float] = []
        self.by_subject: dict[str, list[StoredMsg]] = defaultdict(list)
        self.listeners: set[threading.Event] = set()

    def last(self, subject: str) -> StoredMsg | None:
        found = self.by_subject.get(subject)
        return found[-1] if found else None

    def append(self, msgs: Sequence[OutMsg]) -> int:
        """Store `msgs` as one block (the caller holds the lock); the last sequence. An expected last subject
        sequence is checked as the server checks it: a mismatch is a bug in the plan, not a race."""
        for msg in msgs:
            expected = msg.headers.get(EXPECTED)
            last = self.last(msg.subject)
            if expected is not None and int(expected) != (last.seq if last is not None else 0):
                raise IntegrityError(f"{msg.subject}: expected last sequence {expected}, it moved on")
        now = time.time()
        for msg in msgs:
            stored = StoredMsg(msg.subject, len(self.messages) + 1, dict(msg.headers), bytes(msg.body))
            self.messages.append(stored)
            self.times.append(now)
            self.by_subject[msg.subject].append(stored)
        for listener in self.listeners:
            listener.set()
        return len(self.messages)


class MemoryAggregateRecorder(AggregateRecorder):
    def __init__(self, prefix: str = "aidraw", log: MemoryLog | None = None) -> None:
        self.prefix = prefix
        self.log = log if log is not None else MemoryLog()

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._insert(stored_events, **kwargs)
        return None

    def _insert(self, stored_events: Sequence[StoredEvent], *, claims: Sequence[Claim] = (),
                releases: Sequence[Claim] = (), idempotency_key: IdempotencyArg = None, tracking: object = None,
                **_: Any) -> list[int]:
        if tracking is not None:
            raise ProgrammingError("tracking records live with the views in PostgreSQL, not in the event store")
        plan = plan_write(self.prefix, stored_events, [self._subject(e.originator_id) for e in stored_events],
                          claims, releases, idempotency_key)
        cache = VersionCache()
        with self.log.lock:
            # Decided on the current state: raises the answer (taken version, claim held, repeated key).
            plan.after_conflict({s: self.log.last(s) for s in plan.depends_on()}, cache)
            msgs = plan.messages(cache)
            if not msgs:
                return []
            last_seq = self.log.append(msgs)
        return plan.stored(cache, last_seq, len(msgs))

    def select_events(self, originator_id: UUID | str, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        with self.log.lock:
            msgs = list(self.log.by_subject.get(self._subject(originator_id), ()))
        events = [_stored_event(m) for m in msgs]
        events = [e for e in events if (gt is None or e.originator_version > gt)
                  and (lte is None or e.originator_version <= lte)]
        if desc:
            events.reverse()
        return events if limit is None else events[:limit]

    def read_subject(self, subject: str) -> list[Notification]:
        with self.log.lock:
            msgs = list(self.log.by_subject.get(subject, ()))
        return [n for m in msgs if (n := self._notification(m)) is not None]

    def read_claim(self, subject: str) -> str | None:
        with self.log.lock:
            return holder(self.log.last(subject))

    def last_sequence(self) -> int:
        return len(self.log.messages)

    def message_time(self, seq: int) -> float | None:
        with self.log.lock:
            return self.log.times[seq - 1] if 1 <= seq <= len(self.log.times) else None

    def _subject(self, originator_id: UUID | str) -> str:
        try:
            uuid = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        except ValueError:
            raise ProgrammingError(f"originator ids must be UUIDs here, not {originator_id!r}") from None
        return subject_for(self.prefix, uuid)

    def _notification(self, msg: StoredMsg) -> Notification | None:
        """The notification a message stands for, None for claims and idempotency records."""
        topic = msg.headers.get(TOPIC)
        if topic is None or not is_event_subject(self.prefix, msg.subject):
            return None
        return Notification(id=msg.seq, originator_id=UUID(msg.headers[ID]),
                            originator_version=int(msg.headers[VERSION]), topic=topic, state=msg.data)


class MemoryApplicationRecorder(MemoryAggregateRecorder, ApplicationRecorder):
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._insert(stored_events, **kwargs)

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[Notification]:
        first = 1 if start is None else (start if inclusive_of_start else start + 1)
        out: list[Notification] = []
        with self.log.lock:
            for msg in self.log.messages[max(first, 1) - 1:]:
                if stop is not None and msg.seq > stop:
                    break
                notification = self._notification(msg)
                if notification is not None and (not topics or notification.topic in topics):
                    out.append(notification)
                    if len(out) == limit:
                        break
        return out

    def max_notification_id(self) -> int | None:
        return self.last_sequence() or None

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        return MemorySubscription(self, gt, topics)


class MemorySubscription(ListenNotifySubscription[MemoryApplicationRecorder]):
    """Pulls pages with `select_notifications` whenever an append sets its event."""

    def __init__(self, recorder: MemoryApplicationRecorder, gt: int | None = None,
                 topics: Sequence[str] = ()) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        with recorder.log.lock:
            recorder.log.listeners.add(self._has_been_notified)

    def stop(self) -> None:
        super().stop()
        with self._recorder.log.lock:
            self._recorder.log.listeners.discard(self._has_been_notified)


def _stored_event(msg: StoredMsg) -> StoredEvent:
    return StoredEvent(originator_id=UUID(msg.headers[ID]), originator_version=int(msg.headers[VERSION]),
                       topic=msg.headers[TOPIC], state=msg.data)


class Factory(InfrastructureFactory[TrackingRecorder]):
    """Recorders in memory, one log per factory (per Application). Environment: NATS_SUBJECT_PREFIX (aidraw),
    so that claim subjects are spelled as on JetStream; snapshots get a log of their own."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        self.prefix = self.env.get("NATS_SUBJECT_PREFIX") or "aidraw"
        self._events: MemoryApplicationRecorder | None = None

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose == "snapshots":
            return MemoryAggregateRecorder(f"{self.prefix}_snapshots")
        return MemoryAggregateRecorder(self.prefix)

    def application_recorder(self) -> ApplicationRecorder:
        if self._events is None:
            self._events = MemoryApplicationRecorder(self.prefix)
        return self._events

    def tracking_recorder(self, tracking_recorder_class: type[TrackingRecorder] | None = None) -> TrackingRecorder:
        raise NotImplementedError("no tracking recorder here: tracking lives with the views in PostgreSQL")

    def process_recorder(self) -> ProcessRecorder:
        raise NotImplementedError("no process recorder here, as on JetStream")
