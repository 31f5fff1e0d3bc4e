"""An `eventsourcing` persistence module on NATS JetStream (`PERSISTENCE_MODULE=events.store.jetstream`).

Message format (a contract: the projectors read the stream directly). One message per stored event:
subject `subject_for(prefix, originator_id)`, headers `Es-Topic` (the event's topic), `Es-Version` (its
originator version, decimal), `Es-Id` (str(originator_id)), body = the stored event's `state` bytes.
A notification id is the message's stream sequence. Claim messages (`Aidraw-Claim`, see events/store/claims.py) and
idempotency records (`<prefix>.idem.<sha256 of key>`) share the stream but carry no `Es-Topic`: readers skip
them, so notification ids have gaps where they are.

Optimistic concurrency, with the SQL recorders' meaning (a unique (originator_id, version)) made append-only:
if the subject's last message has version L at sequence S, version v may be appended only if v > L, and it is
published with `Nats-Expected-Last-Subject-Sequence: S` (0 for an empty subject), so the server refuses it
(10071) when anything was appended since. (L, S) comes from a small per-recorder cache filled by reads and own
writes; without an entry the subject is assumed empty. On 10071 the subject's last message is re-read: if
v <= its version the write conflicts (IntegrityError), otherwise the cache was merely stale and the write is
retried with the fresh sequence. JetStream checks the expected header only on the first message of a subject
in a batch (a second one is refused with 10164), so versions within a batch are checked here.

One message is a plain publish (~0.3 ms round trip); several (several events, or any claim, release or
idempotency record) are one atomic batch (all or nothing, ~3-5 ms: see events/store/batch.py). What a write sends
and how it answers a refusal is decided in events/store/writeplan.py (no I/O); this module does the I/O.

`insert_events(stored_events, claims=..., releases=..., idempotency_key=...)` (keywords pass through
`Application.save()`): claims and releases follow events/store/claims.py. An idempotency key appends a record on
`<prefix>.idem.<sha256 hex of key>` with expected sequence 0 (so it is remembered forever), body
`{"events": [[originator id, version], ...], "request": <digest>}` (the digest when the key came as a
RequestKey), in the same batch; the record also carries `Nats-Msg-Id` so the
server's duplicate window catches a quick retry too (accepted in atomic batches; a batch with a known id is
refused whole with 10201). The id is the sha256 hex of the key, not the key: a client's text never goes into
a header. A repeated key raises DuplicateRequest and stores nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    Notification,
    OperationalError,
    PersistenceError,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
    Subscription,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType

from events.ids import is_event_subject, subject_for
from events.store import batch as jsbatch
from events.store.batch import JetStreamAPIError, NoStreamError
from events.store.bridge import ConnectionLost, NatsBridge, NotConnected
from events.store.claims import Claim, IdempotencyArg
from events.store.directget import StoredMsg, get_batch, get_last, get_range, get_seq, stored_time
from events.store.errors import EventLogUnavailable, OutcomeUnknown
from events.store.stream import ensure_stream, stream_last_sequence
from events.store.subscription import JetStreamSubscription
from events.store.writeplan import (
    ID,
    TOPIC,
    VERSION,
    PositionHints,
    VersionCache,
    duplicate,
    holder,
    on_refusal,
    plan_write,
)

__all__ = ["Factory", "JetStreamAggregateRecorder", "JetStreamApplicationRecorder"]

T = TypeVar("T")



class JetStreamAggregateRecorder(AggregateRecorder):
    def __init__(self, bridge: NatsBridge, stream: str, prefix: str, *, timeout: float = 10.0,
                 cache_size: int = 10_000) -> None:
        self.bridge = bridge
        self.stream = stream
        self.prefix = prefix
        self.timeout = timeout
        self._cache = VersionCache(cache_size)
        # (subject, version) -> stream sequence: what this recorder wrote lately, and what snapshots said
        self._positions = PositionHints(cache_size)

    # ---- writing ----

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._insert(stored_events, **kwargs)
        return None

    def _insert(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        claims: Sequence[Claim] = (),
        releases: Sequence[Claim] = (),
        idempotency_key: IdempotencyArg = None,
        tracking: object = None,
        **_: Any,
    ) -> list[int]:
        if tracking is not None:
            raise ProgrammingError("tracking records live with the views in PostgreSQL, not in JetStream")
        plan = plan_write(self.prefix, stored_events, [self._subject(e.originator_id) for e in stored_events],
                          claims, releases, idempotency_key, self._extra_headers(stored_events))
        idem = plan.idem
        if plan.release_subjects:  # a release needs the holder's sequence (claims are first tried as free)
            plan.claims_seen(self._read_lasts(plan.release_subjects))
        attempts = busy = 0
        while True:
            msgs = plan.messages(self._cache)
            if not msgs:
                return []
            try:
                ack = self.bridge.run(jsbatch.publish(self.bridge.nc, msgs, self.timeout), self.timeout + 5)
            except TimeoutError as exc:
                raise OutcomeUnknown(
                    f"no answer from NATS within {self.timeout:g} s: "
                    "the write may or may not have been stored"
                ) from exc
            except ConnectionLost as exc:
                raise OutcomeUnknown(f"{exc}: the write may or may not have been stored") from exc
            except (NotConnected, NoStreamError) as exc:
                raise EventLogUnavailable(f"{exc}: nothing was stored") from exc
            except JetStreamAPIError as exc:
                if on_refusal(exc, attempts, busy) == "conflict":
                    attempts += 1
                    plan.after_conflict(self._read_lasts(plan.depends_on()), self._cache)
                else:
                    busy += 1
                    time.sleep(0.005 * 2**busy)
                continue
            if ack.duplicate:  # a lone idempotency record, seen within the duplicate window
                record = self._read_lasts([idem])[idem] if idem is not None else None
                if record is None:
                    raise PersistenceError("JetStream reported a duplicate but no idempotency record exists")
                raise duplicate(record)
            if ack.count != len(msgs):
                raise PersistenceError(f"JetStream acknowledged {ack.count} messages of {len(msgs)}")
            sequences = plan.stored(self._cache, ack.seq, ack.count)
            for event, subject, seq in zip(stored_events, plan.subjects, sequences, strict=True):
                self._positions.remember(subject, event.originator_version, seq)
            return sequences

    # ---- reading ----

    def select_events(self, originator_id: UUID | str, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        subject = self._subject(originator_id)
        if desc and limit == 1 and lte is None:  # the latest event only: one direct get
            last = self._run(get_last(self.bridge.nc, self.stream, subject, self.timeout))
            if last is None:
                return []
            event = self._stored_event(last)
            self._cache.remember(subject, event.originator_version, last.seq)
            return [event] if gt is None or event.originator_version > gt else []
        start = self._positions.get(subject, gt) if gt is not None else None
        if gt is None or start is None:
            msgs = self._read_all(subject)
        else:  # a snapshot said where version `gt` is: read only what follows it
            msgs = self._read_from(subject, start + 1)
            if msgs and int(msgs[0].headers[VERSION]) != gt + 1:
                msgs = self._read_all(subject)
        events = [self._stored_event(m) for m in msgs]
        if msgs:
            self._cache.remember(subject, events[-1].originator_version, msgs[-1].seq)
        events = [e for e in events if (gt is None or e.originator_version > gt)
                  and (lte is None or e.originator_version <= lte)]
        if desc:
            events.reverse()
        return events if limit is None else events[:limit]

    def read_subject(self, subject: str) -> list[Notification]:
        """Every event stored on one subject, in order (the audit trail)."""
        msgs = self._read_all(subject)
        return [n for m in msgs if (n := self._notification(m.subject, m.seq, m.headers, m.data)) is not None]

    def read_claim(self, subject: str) -> str | None:
        """The owner holding the claim subject, None when it is free."""
        return holder(self._run(get_last(self.bridge.nc, self.stream, subject, self.timeout)))

    def last_sequence(self) -> int:
        """The stream's last sequence, 0 when it is empty."""
        try:
            return stream_last_sequence(self.bridge, self.stream)
        except TimeoutError as exc:
            raise OperationalError(f"NATS did not answer within {self.timeout:g} s") from exc
        except (NotConnected, ConnectionLost) as exc:
            raise EventLogUnavailable(str(exc)) from exc

    def message_time(self, seq: int) -> float | None:
        """When the message at stream sequence `seq` was stored (epoch seconds), None past the end."""
        msg = self._run(get_seq(self.bridge.nc, self.stream, seq, self.timeout))
        return stored_time(msg) if msg is not None else None

    def _read_all(self, subject: str) -> list[StoredMsg]:
        return self._read_from(subject, 1)

    def _read_from(self, subject: str, seq: int) -> list[StoredMsg]:
        nc = self.bridge.nc
        return self._run(get_range(nc, self.stream, subjects=subject, seq=seq, timeout=self.timeout))

    def _extra_headers(self, stored_events: Sequence[StoredEvent]) -> list[dict[str, str]] | None:
        """Headers to add to each stored event's message (none here; see events/store/snapshots.py)."""
        return None

    def subject_of(self, originator_id: UUID | str) -> str:
        return self._subject(originator_id)

    def position(self, originator_id: UUID | str, version: int) -> int | None:
        """The stream sequence of `version` of an aggregate, when this recorder wrote or was told it lately."""
        return self._positions.get(self._subject(originator_id), version)

    def know_position(self, subject: str, version: int, seq: int) -> None:
        """`version` of the aggregate on `subject` is stored at stream sequence `seq` (a snapshot said so)."""
        self._positions.remember(subject, version, seq)

    def _read_lasts(self, subjects: list[str]) -> dict[str, StoredMsg | None]:
        async def read() -> list[StoredMsg | None]:
            return list(await asyncio.gather(*(get_last(self.bridge.nc, self.stream, s, self.timeout)
                                               for s in subjects)))

        return dict(zip(subjects, self._run(read()), strict=True)) if subjects else {}

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a read on the bridge: reads are safe to repeat, so a timeout is an OperationalError."""
        try:
            return self.bridge.run(coro, self.timeout + 5)
        except TimeoutError as exc:
            raise OperationalError(f"NATS did not answer within {self.timeout:g} s") from exc
        except (NotConnected, ConnectionLost, NoStreamError) as exc:
            raise EventLogUnavailable(str(exc)) from exc

    def _subject(self, originator_id: UUID | str) -> str:
        if not isinstance(originator_id, UUID):
            try:
                originator_id = UUID(str(originator_id))
            except ValueError:
                raise ProgrammingError(f"originator ids must be UUIDs here, not {originator_id!r}") from None
        return subject_for(self.prefix, originator_id)

    def _stored_event(self, msg: StoredMsg) -> StoredEvent:
        return StoredEvent(originator_id=UUID(msg.headers[ID]), originator_version=int(msg.headers[VERSION]),
                           topic=msg.headers[TOPIC], state=msg.data)

    def _notification(
        self, subject: str, seq: int, headers: dict[str, str], data: bytes
    ) -> Notification | None:
        """The notification a stream message stands for, None for claims and idempotency records."""
        topic = headers.get(TOPIC)
        if topic is None or not is_event_subject(self.prefix, subject):
            return None
        return Notification(id=seq, originator_id=UUID(headers[ID]), originator_version=int(headers[VERSION]),
                            topic=topic, state=bytes(data))


class JetStreamApplicationRecorder(JetStreamAggregateRecorder, ApplicationRecorder):
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._insert(stored_events, **kwargs)

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[Notification]:
        seq = 1 if start is None else (start if inclusive_of_start else start + 1)
        seq = max(seq, 1)
        out: list[Notification] = []
        while len(out) < limit and (stop is None or seq <= stop):
            wanted = limit - len(out)
            # Claims, records and other topics are skipped after reading: ask for more when filtering.
            size = min(jsbatch.MAX_BATCH, max(wanted, 100) if topics else wanted)
            if stop is not None:
                size = min(size, stop - seq + 1)
            msgs, more = self._run(get_batch(self.bridge.nc, self.stream, subjects=f"{self.prefix}.>",
                                             seq=seq, batch=size, timeout=self.timeout))
            for msg in msgs:
                if stop is not None and msg.seq > stop:
                    break
                notification = self._notification(msg.subject, msg.seq, msg.headers, msg.data)
                if notification is not None and (not topics or notification.topic in topics):
                    out.append(notification)
                    if len(out) == limit:
                        break
            if not msgs or not more:
                break
            seq = msgs[-1].seq + 1
        return out

    def max_notification_id(self) -> int | None:
        return self.last_sequence() or None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return JetStreamSubscription(
            self, self.bridge, self.stream, self.prefix, self._notification, gt, topics
        )


class Factory(InfrastructureFactory[TrackingRecorder]):
    """Recorders on the domain stream. Environment (given by the application, command/app.py, from `Settings`):
    NATS_URL (else localhost), NATS_STREAM (AIDRAW), NATS_SUBJECT_PREFIX (aidraw), NATS_TIMEOUT (seconds, 10),
    NATS_STREAM_REPLICAS (1), NATS_DUPLICATE_WINDOW (seconds, 120). Snapshots, when enabled,
    go to a stream of their own (`<stream>_SNAPSHOTS`, prefix `<prefix>_snapshots`): notification ids are
    the domain stream's sequences and must count only events."""

    NATS_URL = "NATS_URL"
    NATS_STREAM = "NATS_STREAM"
    NATS_SUBJECT_PREFIX = "NATS_SUBJECT_PREFIX"
    NATS_TIMEOUT = "NATS_TIMEOUT"
    NATS_STREAM_REPLICAS = "NATS_STREAM_REPLICAS"
    NATS_DUPLICATE_WINDOW = "NATS_DUPLICATE_WINDOW"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        url = self.env.get(self.NATS_URL) or "nats://127.0.0.1:4222"
        self.bridge = NatsBridge.shared(url)
        self.stream = self.env.get(self.NATS_STREAM) or "AIDRAW"
        self.prefix = self.env.get(self.NATS_SUBJECT_PREFIX) or "aidraw"
        self.timeout = float(self.env.get(self.NATS_TIMEOUT) or 10.0)
        self.replicas = int(self.env.get(self.NATS_STREAM_REPLICAS) or 1)
        self.duplicate_window_s = float(self.env.get(self.NATS_DUPLICATE_WINDOW) or 120.0)
        self._events: JetStreamApplicationRecorder | None = None

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose == "snapshots":
            from events.store.snapshots import JetStreamSnapshotRecorder

            stream, prefix = f"{self.stream}_SNAPSHOTS", f"{self.prefix}_snapshots"
            ensure_stream(self.bridge, stream, prefix, replicas=self.replicas)
            return JetStreamSnapshotRecorder(self.bridge, stream, prefix, self._events_recorder(),
                                             timeout=self.timeout)
        self._ensure_domain_stream()
        return JetStreamAggregateRecorder(self.bridge, self.stream, self.prefix, timeout=self.timeout)

    def application_recorder(self) -> ApplicationRecorder:
        return self._events_recorder()

    def _events_recorder(self) -> JetStreamApplicationRecorder:
        """The one recorder of the domain stream an application gets (its snapshots point into it)."""
        if self._events is None:
            self._ensure_domain_stream()
            self._events = JetStreamApplicationRecorder(self.bridge, self.stream, self.prefix, timeout=self.timeout)
        return self._events

    def _ensure_domain_stream(self) -> None:
        ensure_stream(self.bridge, self.stream, self.prefix, self.duplicate_window_s, self.replicas)

    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        raise NotImplementedError(
            "no tracking recorder on JetStream: tracking lives with the views in PostgreSQL, written in the "
            "same transaction as the view (use eventsourcing.postgres for it)"
        )

    def process_recorder(self) -> ProcessRecorder:
        raise NotImplementedError(
            "no process recorder on JetStream: events (NATS) and tracking (PostgreSQL) cannot be written "
            "atomically together"
        )
