"""What callers may rely on from the event store: two small Protocols and the neutral values and errors.

`command/`, `query/`, `infra/` and `gpu_runner/` name only what this module exports; which store is behind it
(JetStream in events/store/jetstream.py and events/store/aio.py, memory in events/store/memory.py) is chosen by
the composition root. A test (tests/unit/test_store_imports.py) fails when one of them imports an adapter.

The rules every store keeps (tests/contract/test_event_stores.py runs them over each one):
- An append is all or nothing: its events, uniqueness claims and releases (events/store/claims.py) and its
  idempotency record are stored together or not at all.
- Versions of an aggregate only rise: version v may be appended only when v is above the last one stored
  (else IntegrityError; a race lost is the same answer, and a retry after reloading is the cure).
- A claim held by another owner refuses the whole append with ClaimConflict; claiming what one already holds
  changes nothing; only the holder's release frees a claim.
- An idempotency key is remembered forever: an append that repeats one stores nothing and raises
  DuplicateRequest (naming what the first one stored).
- A sequence is a position in the log, rising with each append; claims and idempotency records take
  sequences too, so the events' sequences may have gaps.
- No answer in time is OutcomeUnknown: the append may or may not have been stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from events.store.claims import Claim, IdempotencyArg, RequestKey, claim_subject, idempotency_subject
from events.store.errors import ClaimConflict, DuplicateRequest, OutcomeUnknown

__all__ = [
    "AsyncEventStore",
    "Claim",
    "ClaimConflict",
    "DuplicateRequest",
    "EventStore",
    "IdempotencyArg",
    "Notification",
    "OutcomeUnknown",
    "RequestKey",
    "StoredEvent",
    "claim_subject",
    "idempotency_subject",
]


@runtime_checkable
class EventStore(Protocol):
    """The log, called from threads (the command side, request handlers in a thread pool, the CLI)."""

    def insert_events(self, stored_events: Sequence[StoredEvent], *, claims: Sequence[Claim] = (),
                      releases: Sequence[Claim] = (), idempotency_key: IdempotencyArg = None
                      ) -> Sequence[int] | None:
        """Append `stored_events` with `claims`, `releases` and an idempotency record, all or nothing; the
        events' sequences (None from a store that has no sequences to tell: eventsourcing's aggregate
        recorders)."""
        ...

    def select_events(self, originator_id: UUID | str, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        """An aggregate's events with versions in (gt, lte], oldest first (newest first with `desc`)."""
        ...

    def read_claim(self, subject: str) -> str | None:
        """The owner holding the claim subject, None when it is free."""
        ...

    def read_subject(self, subject: str) -> list[Notification]:
        """Every event stored on one subject, in order, with its sequence (the audit trail)."""
        ...

    def last_sequence(self) -> int:
        """The log's last sequence, 0 when it is empty."""
        ...

    def message_time(self, seq: int) -> float | None:
        """When the message at sequence `seq` was stored (epoch seconds), None past the end."""
        ...


class AsyncEventStore(Protocol):
    """The same log for code on an asyncio loop (the GPU runner), with the same rules, without a bridge
    thread. It does not load aggregates: the caller folds `select_events` itself (events/codec.py)."""

    async def insert_events(self, stored_events: Sequence[StoredEvent], *, claims: Sequence[Claim] = (),
                            releases: Sequence[Claim] = (), idempotency_key: IdempotencyArg = None
                            ) -> list[int]:
        """Append as EventStore.insert_events does; the events' sequences."""
        ...

    async def select_events(self, originator_id: UUID | str, *, gt: int | None = None,
                            lte: int | None = None) -> list[StoredEvent]:
        """An aggregate's events with versions in (gt, lte], oldest first."""
        ...

    async def read_claim(self, subject: str) -> str | None:
        """The owner holding the claim subject, None when it is free."""
        ...

    async def read_subject(self, subject: str) -> list[Notification]:
        """Every event stored on one subject, in order, with its sequence."""
        ...

    async def last_sequence(self) -> int:
        """The log's last sequence, 0 when it is empty."""
        ...
