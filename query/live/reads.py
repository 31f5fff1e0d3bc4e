"""Reading an object exactly as the watching caller's GET would: the app's own route, called in-process with the
caller's actor in the ASGI scope (clients cannot set scope keys), so visibility, 403/404 and the body's shape
have one source (it shows in the request metrics as a GET of that route). The call marks itself as the live
feed's, so an image reload records no view."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from starlette.types import Message

from events.base import Deleted
from events.codec import mapper
from events.ids import KINDS, aggregate_uuid
from events.store.protocol import EventStore
from infra.actor import Actor
from infra.auth import ACTOR_SCOPE_KEY


async def get_as(app: FastAPI, state: dict[str, Any], actor: Actor, path: str,
                 query: str = "") -> tuple[int, Any]:
    """(status, JSON body) of `GET path` for `actor`; the body is None unless the status is 200."""
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "", "headers": [],
        "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0), "app": app, "state": state,
        ACTOR_SCOPE_KEY: actor, "aidraw.live": True,
    }
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)  # the whole app: its error handlers answer 401/403/404 as for a client
    return status, json.loads(b"".join(chunks)) if status == 200 else None


def was_deleted(event_log: EventStore, collection: str, object_id: int) -> bool:
    """Whether the object's own last event deletes it (a 404 is then "gone", not "hidden from you")."""
    kind = collection[:-1]
    if kind not in KINDS:
        return False
    stored = event_log.select_events(aggregate_uuid(kind, object_id), desc=True, limit=1)
    return bool(stored) and isinstance(mapper().to_domain_event(stored[0]), Deleted)
