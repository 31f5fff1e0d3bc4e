"""Base classes of every domain event.

Events are facts in the past tense. They are defined here, not beside the aggregates in `command/`, so that
projectors and the GPU runner can decode them without importing the command side. An event only says what
happened; how it changes an aggregate is the aggregate's business: `Changed.apply` hands the event to the
handler the aggregate's `WHEN` table names for the event's class. A plain table rather than
`functools.singledispatchmethod`: on Python 3.13.0 that caches per instance in a weak dictionary, which hashes
the aggregate, and eventsourcing's aggregates refuse to be hashed.

Each class has a `class_version` (1 unless said otherwise); when a payload changes shape, bump the version and
add a static `upcast_vN_vN1(state)` that rewrites an older stored payload in place (the eventsourcing mapper
calls the chain on read). Old payloads stay in the log forever, so upcasters are never removed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from eventsourcing.domain import AggregateCreated, AggregateEvent

# An aggregate's handlers by event class: `(aggregate, event) -> None`, each changing the aggregate's state.
EventHandlers = Mapping[type["Changed"], Callable[[Any, Any], None]]


class HandlesEvents(Protocol):
    WHEN: ClassVar[EventHandlers]


class Created(AggregateCreated):
    """The first event of an aggregate. Its fields (besides the base ones) are the aggregate's __init__ args."""

    class_version = 1


class Changed(AggregateEvent):
    """Any later event of an aggregate."""

    class_version = 1

    def apply(self, aggregate: HandlesEvents) -> None:
        for cls in type(self).__mro__:  # the event's own class first, then its bases
            handler = aggregate.WHEN.get(cls)
            if handler is not None:
                handler(aggregate, self)
                return
        raise NotImplementedError(f"{type(aggregate).__name__} has no handler for {type(self).__name__}")


class Deleted(Changed):
    """The aggregate is gone for its users; its events stay in the log (audits, rebuilds)."""
