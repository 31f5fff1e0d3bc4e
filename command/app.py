"""The command side's eventsourcing Application: loads aggregates from the log and appends their new events.

Everything a command writes goes through `store`, which returns the stream sequence of the last event written
(the `X-Event-Sequence` of the answer) and turns the log's refusals into domain answers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProjectorFunction, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, OperationalError, PersistenceError

from events.codec import register_transcodings
from events.ids import aggregate_uuid
from events.store.protocol import Claim, ClaimConflict, DuplicateRequest, EventStore, IdempotencyArg, OutcomeUnknown
from infra.errors import Conflict, NotFound, Unavailable
from infra.settings import Settings

log = logging.getLogger("aidraw.command")

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")


class CommandApp(Application[UUID]):
    name = "aidraw"
    # Aggregates whose histories grow long register an interval here (command/likes.py): every so many events
    # a snapshot is stored, and loading reads the latest snapshot and the events after it (events/store/snapshots.py).
    is_snapshotting_enabled = True
    snapshotting_intervals: ClassVar[dict[Any, int]] = {}

    def __init__(self, settings: Settings, nats_url: str, *,
                 persistence_module: str = "events.store.jetstream") -> None:
        """`persistence_module` names the store (events/store/memory.py for unit tests of handlers)."""
        super().__init__(env={
            "PERSISTENCE_MODULE": persistence_module,
            "NATS_URL": nats_url,
            "NATS_STREAM": settings.stream_name,
            "NATS_SUBJECT_PREFIX": settings.subject_prefix,
            "NATS_TIMEOUT": str(settings.event_log_timeout_s),
            "NATS_STREAM_REPLICAS": str(settings.stream_replicas),
            "NATS_DUPLICATE_WINDOW": repr(settings.duplicate_window_s),
        })
        self.settings = settings
        recorder = self.recorder
        if not isinstance(recorder, EventStore):
            raise TypeError(f"{persistence_module} does not provide an EventStore (events/store/protocol.py)")
        self.event_log: EventStore = recorder  # the log itself: claims, audit trails, the last sequence

    def take_snapshot(self, aggregate_id: UUID, version: int | None = None,
                      projector_func: ProjectorFunction[Any, Any] = project_aggregate) -> None:
        """Snapshots are a cache: one that cannot be stored (another process stored a later one first, NATS is
        slow) never fails the command whose events are already stored."""
        try:
            super().take_snapshot(aggregate_id, version, projector_func)
        except (IntegrityError, PersistenceError, OperationalError) as exc:
            log.warning("snapshot not stored", extra={"aggregate": str(aggregate_id), "version": version,
                                                      "error": str(exc)})

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        register_transcodings(transcoder)

    def load(self, cls: type[A], kind: str, number: int) -> A:
        """The live aggregate `kind` #number, or NotFound (also for a deleted one)."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_uuid(kind, number))
        except (AggregateNotFoundError, ValueError):
            raise NotFound(f"No {kind} with id {number}.") from None
        if not isinstance(aggregate, cls) or getattr(aggregate, "deleted", False):
            raise NotFound(f"No {kind} with id {number}.")
        return aggregate

    def store(self, *aggregates: Aggregate, claims: Sequence[Claim] = (), releases: Sequence[Claim] = (),
              idempotency_key: IdempotencyArg = None) -> int:
        """Append the aggregates' pending events as one unit; the stream sequence of the last one."""
        try:
            recordings = self.save(*aggregates, claims=claims, releases=releases,
                                   idempotency_key=idempotency_key)
        except ClaimConflict:
            raise
        except OutcomeUnknown as exc:  # no answer in time, or the connection dropped under way
            raise Unavailable("The event log did not confirm the write; it may or may not have been stored. "
                              "Retry with the same Idempotency-Key to be safe.") from exc
        if not recordings:
            return 0
        return max(r.notification.id for r in recordings)


def retry_on_conflict(attempt: Callable[[], R], tries: int = 8) -> R:
    """Run a load-decide-store attempt again when another writer got in between (optimistic concurrency),
    after a short random pause that grows with each try, so that writers racing for one aggregate spread out.

    Uniqueness conflicts and duplicates are answers, not races: they pass straight through."""
    for n in range(tries - 1):
        try:
            return attempt()
        except (ClaimConflict, DuplicateRequest):
            raise
        except IntegrityError:
            time.sleep(random.uniform(0, min(0.05, 0.002 * 2**n)))
            continue
    try:
        return attempt()
    except (ClaimConflict, DuplicateRequest):
        raise
    except IntegrityError as exc:
        raise Conflict("The object was changed by someone else at the same time; try again.") from exc

