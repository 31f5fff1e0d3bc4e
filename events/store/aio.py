"""The event store for code on an asyncio loop (the GPU runner): an `AsyncEventStore` on JetStream.

The same messages and rules as the thread-side recorder (events/store/jetstream.py): the write is planned by
`WritePlan` (events/store/writeplan.py), a refusal is handled by `on_refusal`, and the reads are the same
direct gets (events/store/directget.py). The difference is only where it runs: on the caller's loop, with the
caller's NATS connection, without the bridge thread (events/store/bridge.py must not be called from a loop
thread). It does not create the stream: the composition root has done so (events/store/stream.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import (
    Notification,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
)
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from events.ids import is_event_subject, subject_for
from events.store import batch as jsbatch
from events.store.batch import JetStreamAPIError, NoStreamError
from events.store.claims import Claim, IdempotencyArg
from events.store.directget import StoredMsg, get_last, get_range
from events.store.errors import OutcomeUnknown
from events.store.writeplan import ID, TOPIC, VERSION, VersionCache, duplicate, holder, on_refusal, plan_write

T = TypeVar("T")


class AsyncJetStreamStore:
    """An AsyncEventStore (events/store/protocol.py) on stream `stream`, subjects under `prefix`."""

    def __init__(self, nc: Client, stream: str, prefix: str, *, timeout: float = 10.0,
                 cache_size: int = 10_000) -> None:
        self.nc = nc
        self.stream = stream
        self.prefix = prefix
        self.timeout = timeout
        self._cache = VersionCache(cache_size)

    async def insert_events(self, stored_events: Sequence[StoredEvent], *, claims: Sequence[Claim] = (),
                            releases: Sequence[Claim] = (), idempotency_key: IdempotencyArg = None
                            ) -> list[int]:
        plan = plan_write(self.prefix, stored_events, [self._subject(e.originator_id) for e in stored_events],
                          claims, releases, idempotency_key)
        if plan.release_subjects:  # a release needs the holder's sequence (claims are first tried as free)
            plan.claims_seen(await self._read_lasts(plan.release_subjects))
        conflicts = busy = 0
        while True:
            msgs = plan.messages(self._cache)
            if not msgs:
                return []
            try:
                ack = await jsbatch.publish(self.nc, msgs, self.timeout)
            except TimeoutError as exc:
                raise OutcomeUnknown(
                    f"no answer from NATS within {self.timeout:g} s: the write may or may not have been stored"
                ) from exc
            except NoStreamError as exc:
                raise OperationalError(str(exc)) from exc
            except JetStreamAPIError as exc:
                if on_refusal(exc, conflicts, busy) == "conflict":
                    conflicts += 1
                    plan.after_conflict(await self._read_lasts(plan.depends_on()), self._cache)
                else:
                    busy += 1
                    await asyncio.sleep(0.005 * 2**busy)
                continue
            if ack.duplicate:  # a lone idempotency record, seen within the duplicate window
                record = (await self._read_lasts([plan.idem]))[plan.idem] if plan.idem is not None else None
                if record is None:
                    raise PersistenceError("JetStream reported a duplicate but no idempotency record exists")
                raise duplicate(record)
            if ack.count != len(msgs):
                raise PersistenceError(f"JetStream acknowledged {ack.count} messages of {len(msgs)}")
            return plan.stored(self._cache, ack.seq, ack.count)

    async def select_events(self, originator_id: UUID | str, *, gt: int | None = None,
                            lte: int | None = None) -> list[StoredEvent]:
        subject = self._subject(originator_id)
        # Versions rise with sequences on a subject: when the last event seen is at or below `gt`, everything
        # wanted lies after its sequence (a runner polling its own aggregate reads only what is new).
        known, known_seq = self._cache.get(subject)
        start = known_seq + 1 if known is not None and gt is not None and known <= gt else 1
        msgs = await self._read(get_range(self.nc, self.stream, subjects=subject, seq=start, timeout=self.timeout))
        events = [StoredEvent(originator_id=UUID(m.headers[ID]), originator_version=int(m.headers[VERSION]),
                              topic=m.headers[TOPIC], state=m.data) for m in msgs]
        if msgs:
            self._cache.remember(subject, events[-1].originator_version, msgs[-1].seq)
        return [e for e in events if (gt is None or e.originator_version > gt)
                and (lte is None or e.originator_version <= lte)]

    async def read_claim(self, subject: str) -> str | None:
        return holder(await self._read(get_last(self.nc, self.stream, subject, self.timeout)))

    async def read_subject(self, subject: str) -> list[Notification]:
        msgs = await self._read(get_range(self.nc, self.stream, subjects=subject, seq=1, timeout=self.timeout))
        return [Notification(id=m.seq, originator_id=UUID(m.headers[ID]),
                             originator_version=int(m.headers[VERSION]), topic=m.headers[TOPIC], state=m.data)
                for m in msgs if TOPIC in m.headers and is_event_subject(self.prefix, m.subject)]

    async def last_sequence(self) -> int:
        try:
            info = await asyncio.wait_for(self.nc.jetstream().stream_info(self.stream), self.timeout)
        except NotFoundError:
            raise OperationalError(f"no stream named {self.stream!r}") from None
        except TimeoutError as exc:
            raise OperationalError(f"NATS did not answer within {self.timeout:g} s") from exc
        return int(info.state.last_seq or 0)

    async def _read_lasts(self, subjects: list[str]) -> dict[str, StoredMsg | None]:
        lasts = await self._read(asyncio.gather(*(get_last(self.nc, self.stream, s, self.timeout)
                                                  for s in subjects)))
        return dict(zip(subjects, lasts, strict=True))

    async def _read(self, reading: Awaitable[T]) -> T:
        """Await a read: reads are safe to repeat, so no answer is an OperationalError, not OutcomeUnknown."""
        try:
            return await asyncio.wait_for(reading, self.timeout + 5)
        except TimeoutError as exc:
            raise OperationalError(f"NATS did not answer within {self.timeout:g} s") from exc
        except NoStreamError as exc:
            raise OperationalError(str(exc)) from exc

    def _subject(self, originator_id: UUID | str) -> str:
        try:
            uuid = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        except ValueError:
            raise ProgrammingError(f"originator ids must be UUIDs here, not {originator_id!r}") from None
        return subject_for(self.prefix, uuid)
