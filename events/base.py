"""Base classes of every domain event.

Events are facts in the past tense. They are defined here, not beside the aggregates in `command/`, so that
projectors and the GPU runner can decode them without importing the command side. An event only says what
happened; how it changes an aggregate is the aggregate's business: `Changed.apply` hands the event to the
aggregate's `when` method.

Each class has a `class_version` (1 unless said otherwise); when a payload changes shape, bump the version and
add a static `upcast_vN_vN1(state)` that rewrites an older stored payload in place (the eventsourcing mapper
calls the chain on read). Old payloads stay in the log forever, so upcasters are never removed.
"""

from __future__ import annotations

from typing import Any, Protocol

from eventsourcing.domain import AggregateCreated, AggregateEvent


class HandlesEvents(Protocol):
    def when(self, event: Changed) -> None: ...


class Created(AggregateCreated):
    """The first event of an aggregate. Its fields (besides the base ones) are the aggregate's __init__ args."""

    class_version = 1


class Changed(AggregateEvent):
    """Any later event of an aggregate."""

    class_version = 1

    def apply(self, aggregate: Any) -> None:
        aggregate.when(self)


class Deleted(Changed):
    """The aggregate is gone for its users; its events stay in the log (audits, rebuilds)."""
