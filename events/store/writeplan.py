"""What one `insert_events` call sends, and how it reacts to a refusal: pure logic, no I/O.

The JetStream recorders (events/store/jetstream.py, events/store/aio.py) publish `plan.messages(cache)`; when
JetStream refuses an expected sequence they read the last message of every subject in `plan.depends_on()` and
hand them to `plan.after_conflict()`, which either raises the answer (IntegrityError, ClaimConflict,
DuplicateRequest) or adjusts the expectations for another try. See the module docstring of
events/store/jetstream.py for the rules. The in-memory store (events/store/memory.py) applies the same plan to
a list, so every store gives the same answers.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal
from uuid import UUID

from eventsourcing.persistence import IntegrityError, OperationalError, ProgrammingError, StoredEvent

from events.store import batch as jsbatch
from events.store.batch import MAX_BATCH, JetStreamAPIError, OutMsg
from events.store.claims import CLAIM_HEADER, HELD, RELEASED, Claim, IdempotencyArg, RequestKey, idempotency_subject
from events.store.directget import StoredMsg
from events.store.errors import ClaimConflict, DuplicateRequest

TOPIC, VERSION, ID = "Es-Topic", "Es-Version", "Es-Id"
EXPECTED = "Nats-Expected-Last-Subject-Sequence"

MAX_CONFLICTS = 20  # retries after stale expectations; each one means the subjects changed meanwhile
MAX_BUSY = 5  # retries after 10176 (too many open batches)


class VersionCache:
    """subject -> (version, sequence) of its last event as last seen, least recently used dropped first.

    Only ever a hint: a stale entry costs one refused publish and a re-read, never a wrong answer, because
    the server checks the sequence and the message at a sequence never changes."""

    def __init__(self, size: int = 10_000) -> None:
        self._entries: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, subject: str) -> tuple[int | None, int]:
        """(last version, its sequence); (None, 0) when unknown: then the subject is assumed empty."""
        with self._lock:
            found = self._entries.get(subject)
            if found is None:
                return None, 0
            self._entries.move_to_end(subject)
            return found

    def remember(self, subject: str, version: int, seq: int) -> None:
        with self._lock:
            found = self._entries.get(subject)
            if found is not None and found[1] >= seq:  # a slower concurrent reader must not bring back the past
                return
            self._entries[subject] = (version, seq)
            self._entries.move_to_end(subject)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


class PositionHints:
    """Where given versions of aggregates sit in the stream: (subject, version) -> stream sequence, for the most
    recently used entries. Snapshots carry such a position, so that loading from one reads only the events
    after it. A wrong hint cannot give a wrong answer: the reader checks the version it finds there."""

    def __init__(self, size: int = 10_000) -> None:
        self._entries: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, subject: str, version: int) -> int | None:
        with self._lock:
            seq = self._entries.get((subject, version))
            if seq is not None:
                self._entries.move_to_end((subject, version))
            return seq

    def remember(self, subject: str, version: int, seq: int) -> None:
        with self._lock:
            self._entries[(subject, version)] = seq
            self._entries.move_to_end((subject, version))
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


def holder(last: StoredMsg | None) -> str | None:
    """The owner holding a claim subject whose last message is `last`, None when it is free."""
    if last is None or last.headers.get(CLAIM_HEADER) != HELD:
        return None
    return last.data.decode()


def duplicate(record: StoredMsg) -> DuplicateRequest:
    body = json.loads(record.data)
    events = body.get("events", [])
    return DuplicateRequest([(UUID(str(oid)), int(version)) for oid, version in events], record.seq,
                            body.get("request"))


class _Pending:
    """A claim or release in the making: the expected sequence of its subject, or skipped."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.expected = 0  # claims are first tried as free: the usual case, and it saves a read
        self.skip = False


def _unique(claims: Sequence[Claim]) -> list[_Pending]:
    found: dict[str, Claim] = {}
    for claim in claims:
        if found.setdefault(claim.subject, claim).owner != claim.owner:
            raise ProgrammingError(f"two owners claim {claim.subject} in one write")
    return [_Pending(c) for c in found.values()]


class WritePlan:
    def __init__(self, prefix: str, events: Sequence[StoredEvent], subjects: Sequence[str],
                 claims: Sequence[Claim], releases: Sequence[Claim], idem_subject: str | None,
                 extra_headers: Sequence[dict[str, str]] | None = None, idem_request: str | None = None) -> None:
        self.events = list(events)
        self.idem_request = idem_request
        self.extra_headers = list(extra_headers) if extra_headers is not None else [{} for _ in self.events]
        self.subjects = list(subjects)
        self.idem = idem_subject
        self.firsts: dict[str, StoredEvent] = {}  # subject -> its first event in this write
        latest: dict[str, int] = {}
        for event, subject in zip(self.events, self.subjects, strict=True):
            # Versions must rise within a subject (a unique (id, version), append-only); checked here
            # because JetStream checks only the first expectation per subject in a batch.
            if subject in latest and event.originator_version <= latest[subject]:
                raise IntegrityError(
                    f"versions of {event.originator_id} in one write must rise: {latest[subject]} then "
                    f"{event.originator_version}"
                )
            latest[subject] = event.originator_version
            self.firsts.setdefault(subject, event)
        if len(self.events) > MAX_BATCH:
            raise ProgrammingError(f"at most {MAX_BATCH} events per write, not {len(self.events)}")
        self.wanted = _unique(claims)
        self.freed = _unique(releases)
        for pending in (*self.wanted, *self.freed):
            if not pending.claim.subject.startswith(prefix + ".") or pending.claim.subject in self.firsts:
                raise ProgrammingError(f"not a claim subject of this stream: {pending.claim.subject}")
        if {p.claim.subject for p in self.wanted} & {p.claim.subject for p in self.freed}:
            raise ProgrammingError("one subject is both claimed and released")

    @property
    def release_subjects(self) -> list[str]:
        return [p.claim.subject for p in self.freed]

    def depends_on(self) -> list[str]:
        """Every subject whose last message decides this write."""
        idem = [self.idem] if self.idem is not None else []
        return [*idem, *self.firsts, *(p.claim.subject for p in (*self.wanted, *self.freed))]

    def messages(self, cache: VersionCache) -> list[OutMsg]:
        msgs: list[OutMsg] = []
        for event, subject, extra in zip(self.events, self.subjects, self.extra_headers, strict=True):
            headers = {**extra, TOPIC: event.topic, VERSION: str(event.originator_version),
                       ID: str(event.originator_id)}
            if self.firsts[subject] is event:
                last_version, last_seq = cache.get(subject)
                if last_version is not None and event.originator_version <= last_version:
                    raise _taken(event, last_version)
                headers[EXPECTED] = str(last_seq)
            msgs.append(OutMsg(subject, event.state, headers))
        for pendings, state in ((self.wanted, HELD), (self.freed, RELEASED)):
            msgs.extend(OutMsg(p.claim.subject, p.claim.owner.encode(),
                               {CLAIM_HEADER: state, EXPECTED: str(p.expected)})
                        for p in pendings if not p.skip)
        if self.idem is not None:
            record: dict[str, object] = {
                "events": [[str(e.originator_id), e.originator_version] for e in self.events]}
            if self.idem_request is not None:
                record["request"] = self.idem_request
            # Nats-Msg-Id lets the duplicate window catch a quick retry too; a hash, not the client's text.
            msgs.append(OutMsg(self.idem, json.dumps(record).encode(),
                               {EXPECTED: "0", "Nats-Msg-Id": self.idem.rsplit(".", 1)[1]}))
        if len(msgs) > MAX_BATCH:
            raise ProgrammingError(f"a write is at most {MAX_BATCH} messages, this one {len(msgs)}")
        return msgs

    def after_conflict(self, lasts: dict[str, StoredMsg | None], cache: VersionCache) -> None:
        """Decide with fresh last messages: raise the answer, or adjust expectations for another try."""
        record = lasts.get(self.idem) if self.idem is not None else None
        if record is not None:
            raise duplicate(record)
        for subject, first in self.firsts.items():
            last = lasts.get(subject)
            if last is not None:
                version = int(last.headers[VERSION])
                cache.remember(subject, version, last.seq)
                if first.originator_version <= version:
                    raise _taken(first, version)
        self.claims_seen(lasts)

    def claims_seen(self, lasts: dict[str, StoredMsg | None]) -> None:
        """Take the claim and release subjects' current state into account."""
        for pending in self.wanted:
            if pending.claim.subject in lasts:
                last = lasts[pending.claim.subject]
                owner = holder(last)
                if owner is not None and owner != pending.claim.owner:
                    raise ClaimConflict(pending.claim.subject, owner)
                pending.expected = last.seq if last is not None else 0
                pending.skip = owner is not None  # already ours: claiming again changes nothing
        for pending in self.freed:
            if pending.claim.subject in lasts:
                last = lasts[pending.claim.subject]
                pending.expected = last.seq if last is not None else 0
                pending.skip = holder(last) != pending.claim.owner  # only the holder releases

    def stored(self, cache: VersionCache, last_seq: int, count: int) -> list[int]:
        """The events' sequences once JetStream stored `count` messages ending at `last_seq`."""
        first = last_seq - count + 1
        last_position = {subject: position for position, subject in enumerate(self.subjects)}
        for subject, position in last_position.items():
            cache.remember(subject, self.events[position].originator_version, first + position)
        return list(range(first, first + len(self.events)))


def plan_write(prefix: str, events: Sequence[StoredEvent], subjects: Sequence[str], claims: Sequence[Claim],
               releases: Sequence[Claim], idempotency_key: IdempotencyArg,
               extra_headers: Sequence[dict[str, str]] | None = None) -> WritePlan:
    """The plan of one append, as every store makes it (an idempotency key may carry a request digest)."""
    request = idempotency_key.request if isinstance(idempotency_key, RequestKey) else None
    key = idempotency_key.key if isinstance(idempotency_key, RequestKey) else idempotency_key
    idem = idempotency_subject(prefix, key) if key is not None else None
    return WritePlan(prefix, events, subjects, claims, releases, idem, extra_headers, idem_request=request)


def on_refusal(exc: JetStreamAPIError, conflicts: int, busy: int) -> Literal["conflict", "busy"]:
    """What a recorder does after JetStream refused a write, having retried `conflicts` stale expectations and
    `busy` full batch queues so far: "conflict" = re-read `depends_on()` and plan again, "busy" = wait a
    little and send again. Every other refusal raises the answer."""
    code = exc.err_code
    if code in (jsbatch.WRONG_LAST_SEQUENCE, jsbatch.BATCH_DUPLICATE_MSG_ID):
        if conflicts + 1 >= MAX_CONFLICTS:
            raise IntegrityError(f"gave up after {conflicts + 1} concurrent changes: {exc}") from exc
        return "conflict"
    if code == jsbatch.BATCH_EXPECTED_SEQ_NOT_FIRST:
        raise IntegrityError(str(exc)) from exc
    if code == jsbatch.BATCH_INCOMPLETE_TOO_MANY and busy < MAX_BUSY:
        return "busy"
    if code in (jsbatch.BATCH_TOO_LARGE, jsbatch.BATCH_DISABLED):
        raise ProgrammingError(str(exc)) from exc
    raise OperationalError(str(exc)) from exc


def _taken(event: StoredEvent, version: int) -> IntegrityError:
    return IntegrityError(
        f"{event.originator_id} already has version {version}: cannot append version {event.originator_version}"
    )
