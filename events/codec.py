"""Turning stored events into domain events and back, the same way on every side.

The command side writes through an eventsourcing Application whose mapper registers these transcodings; the
projectors and the audit trail decode with `decode` below. One codec, so a rebuild reads exactly what was written.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    UUIDAsHex,
)


class IntSetAsList(Transcoding):
    """A set of integers (a snapshot of a user's likes), as a sorted list."""

    type = set
    name = "int_set"

    def encode(self, obj: set[int]) -> list[int]:
        return sorted(obj)

    def decode(self, data: list[int]) -> set[int]:
        return set(data)


def register_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(UUIDAsHex())
    transcoder.register(DecimalAsStr())
    transcoder.register(DatetimeAsISO())
    transcoder.register(IntSetAsList())


@lru_cache(maxsize=1)
def mapper() -> Mapper[UUID]:
    transcoder = JSONTranscoder()
    register_transcodings(transcoder)
    return Mapper(transcoder=transcoder)


def decode(originator_id: UUID | str, version: int, topic: str, state: bytes) -> Any:
    """A domain event from the parts of a stored message (upcast to the current class version)."""
    return mapper().to_domain_event(
        StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=state)
    )


# Headers of an event message in the stream (written by events.store.jetstream).
TOPIC_HEADER = "Es-Topic"
VERSION_HEADER = "Es-Version"
ID_HEADER = "Es-Id"


def decode_message(headers: dict[str, str] | None, data: bytes) -> Any | None:
    """The domain event carried by a stream message, or None for messages that are not events (claims,
    idempotency records)."""
    if not headers or TOPIC_HEADER not in headers:
        return None
    return decode(UUID(headers[ID_HEADER]), int(headers[VERSION_HEADER]), headers[TOPIC_HEADER], data)
