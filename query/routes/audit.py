"""GET /api/{collection}/{id}/events: an object's history, read from the event log itself.

The one query that reads the log rather than a read model (DESIGN.md): an audit must show what was recorded.
Only the object's owner (for a user: the user themself; otherwise the `user_id` of its first event) and admins
see it; anyone else gets 404, as for an unknown id. Sealed personal fields show as "[sealed]" ("[erased]" once
the user was erased) and secret fields (token hashes) as "[redacted]": never plaintext, not even to admins.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from events.codec import decode
from events.ids import aggregate_uuid, subject_for
from events.personal import ERASED, SEALED
from events.store.protocol import EventStore
from events.users import UserErased
from infra.auth import CurrentActor
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas import EventOut
from query.services import QuerySide

router = APIRouter(tags=["audit"])

COLLECTIONS = {
    "tags": "tag", "users": "user", "sessions": "session", "images": "image", "models": "model",
    "tasks": "task", "params": "param", "datasets": "dataset", "dataset": "dataset", "choices": "choice",
    "servers": "server", "server": "server",
}
_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _shown(event: Any, field: str, value: Any, erased: bool) -> Any:
    if field in getattr(type(event), "sealed_fields", ()):
        return ERASED if erased else SEALED
    if field in getattr(type(event), "secret_fields", ()):
        return "[redacted]"
    return _plain(value)


def describe(sequence: int, event: Any, erased: bool = False) -> EventOut:
    data = {k: _shown(event, k, v, erased) for k, v in vars(event).items() if k not in _BASE_FIELDS}
    return EventOut(sequence=sequence, version=event.originator_version, type=type(event).__name__,
                    class_version=getattr(type(event), "class_version", 1), timestamp=event.timestamp, data=data)


def read_history(event_log: EventStore, prefix: str, kind: str, number: int) -> list[tuple[int, Any]]:
    """(stream sequence, decoded event) of every event of the object, oldest first."""
    subject = subject_for(prefix, aggregate_uuid(kind, number))
    return [(n.id, decode(n.originator_id, n.originator_version, n.topic, n.state))
            for n in event_log.read_subject(subject)]


def describe_history(events: list[tuple[int, Any]]) -> list[EventOut]:
    erased = any(isinstance(event, UserErased) for _, event in events)
    return [describe(seq, event, erased) for seq, event in events]


def history(event_log: EventStore, prefix: str, kind: str, number: int) -> list[EventOut]:
    return describe_history(read_history(event_log, prefix, kind, number))


def owner_of(kind: str, number: int, events: list[tuple[int, Any]]) -> int | None:
    if kind == "user":
        return number
    return getattr(events[0][1], "user_id", None) if events else None


@router.get("/api/{collection}/{object_id}/events", response_model=list[EventOut])
async def audit_trail(collection: str, object_id: ObjectId, services: QuerySide, actor: CurrentActor
                      ) -> list[EventOut]:
    """The object's events, oldest first: what happened, when, at which stream sequence (owner or admin)."""
    kind = COLLECTIONS.get(collection)
    if kind is None:
        raise NotFound(f"No collection {collection!r}.")
    events = await run_in_threadpool(read_history, services.event_log, services.settings.subject_prefix, kind,
                                     object_id)
    if not events or not (actor.is_admin or actor.owns(owner_of(kind, object_id, events))):
        raise NotFound(f"No {kind} with id {object_id}.")
    return describe_history(events)
