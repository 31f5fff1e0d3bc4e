"""GET /api/{collection}/{id}/events: an object's history, read from the event log itself.

The one query that reads the log rather than a read model (DESIGN.md): an audit must show what was recorded.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from events.codec import decode
from events.ids import aggregate_uuid, subject_for
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas import EventOut

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


def describe(sequence: int, event: Any) -> EventOut:
    data = {k: _plain(v) for k, v in vars(event).items() if k not in _BASE_FIELDS}
    return EventOut(sequence=sequence, version=event.originator_version, type=type(event).__name__,
                    class_version=getattr(type(event), "class_version", 1), timestamp=event.timestamp, data=data)


def history(event_log: Any, prefix: str, kind: str, number: int) -> list[EventOut]:
    subject = subject_for(prefix, aggregate_uuid(kind, number))
    return [describe(n.id, decode(n.originator_id, n.originator_version, n.topic, n.state))
            for n in event_log.read_subject(subject)]


@router.get("/api/{collection}/{object_id}/events", response_model=list[EventOut])
async def audit_trail(collection: str, object_id: ObjectId, request: Request) -> list[EventOut]:
    """The object's events, oldest first: what happened, when, at which stream sequence."""
    kind = COLLECTIONS.get(collection)
    if kind is None:
        raise NotFound(f"No collection {collection!r}.")
    events = await run_in_threadpool(history, request.app.state.event_log, request.app.state.settings.subject_prefix,
                                     kind, object_id)
    if not events:
        raise NotFound(f"No {kind} with id {object_id}.")
    return events
