"""Who is calling, from the request's token.

`current_actor` resolves `Authorization: Bearer <token>` (or the original frontend's `token: <token>` header) to
an `Actor`; `require_user` additionally refuses anonymous callers with 401. No token means anonymous; a token
that is malformed, forged, expired, ended or whose user is gone is 401, never anonymous and never a 500.

The session and its user are folded from the log itself on each request (infra/session_state.py): logout,
password change and deletion act at once. When a session was last extended more than AIDRAW_SESSION_REFRESH
ago, the request schedules an extension (a SessionExtended event) to run after the answer; the composition root
provides it as the services' `extend_session(session_id)` (infra/services.py), and its failure never fails the
request.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from eventsourcing.persistence import PersistenceError
from fastapi import BackgroundTasks, Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool

from events.codec import mapper
from events.ids import aggregate_uuid
from events.store.protocol import EventStore
from infra.actor import ANONYMOUS, Actor
from infra.errors import Unauthorized, Unavailable
from infra.services import shared_services
from infra.session_state import SessionState, UserState, fold_session, fold_user, session_is_live
from infra.tokens import hash_matches, parse_token, presented_token

log = logging.getLogger("aidraw.auth")

# Declared for the OpenAPI document (the Authorize button, schemathesis); the header is read below.
_BEARER = HTTPBearer(auto_error=False, description="A token from POST /api/sessions.")
_TOKEN_HEADER = APIKeyHeader(name="token", auto_error=False, description="The same token (original frontend).")

ACTOR_SCOPE_KEY = "aidraw.actor"  # an ASGI scope key: clients cannot set it
INVALID_TOKEN = "The token is not valid (malformed, unknown, expired or ended): log in with POST /api/sessions."


def _fold(event_log: EventStore, kind: str, number: int) -> list[Any]:
    stored = event_log.select_events(aggregate_uuid(kind, number))
    return [mapper().to_domain_event(s) for s in stored]


def load_session(event_log: EventStore, session_id: int) -> tuple[SessionState | None, UserState | None]:
    session = fold_session(_fold(event_log, "session", session_id))
    if session is None:
        return None, None
    return session, fold_user(_fold(event_log, "user", session.user_id))


async def current_actor(
    request: Request,
    background: BackgroundTasks,
    _bearer: Annotated[Any, Security(_BEARER)] = None,
    _token: Annotated[str | None, Security(_TOKEN_HEADER)] = None,
) -> Actor:
    given: Actor | None = request.scope.get(ACTOR_SCOPE_KEY)  # the live feed's in-process GET (query/live/)
    if given is not None:
        return given
    token = presented_token(request.headers.get("authorization"), request.headers.get("token"))
    if token is None:
        return ANONYMOUS
    services = shared_services(request)
    actor, extended_at = await actor_for_token(services.event_log, token)
    if actor.session_id is not None and datetime.now(UTC) - extended_at >= timedelta(
            seconds=services.settings.session_refresh_s):
        background.add_task(services.extend_session, actor.session_id)
    return actor


async def actor_for_token(event_log: EventStore, token: str) -> tuple[Actor, datetime]:
    """The actor of a presented token and when its session was last extended; Unauthorized when not live."""
    parsed = parse_token(token)
    if parsed is None:
        raise Unauthorized(INVALID_TOKEN)
    session_id, secret = parsed
    session, user = await _load(event_log, session_id)
    if session is None or not hash_matches(secret, session.token_hash):
        raise Unauthorized(INVALID_TOKEN)
    if not session_is_live(session_id, session, user, datetime.now(UTC)):
        raise Unauthorized(INVALID_TOKEN)
    assert user is not None
    return Actor(user_id=session.user_id, role=user.role, session_id=session_id), session.extended_at


async def session_still_live(event_log: EventStore, session_id: int) -> bool:
    """Whether a session checked earlier is still live (logout, expiry, password change, deleted user)."""
    session, user = await _load(event_log, session_id)
    return session is not None and session_is_live(session_id, session, user, datetime.now(UTC))


async def _load(event_log: EventStore, session_id: int) -> tuple[SessionState | None, UserState | None]:
    try:
        return await run_in_threadpool(load_session, event_log, session_id)
    except PersistenceError as exc:
        raise Unavailable("The event log cannot be read just now; try again.") from exc


async def require_user(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    if actor.is_anonymous:
        raise Unauthorized()
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]
RequiredUser = Annotated[Actor, Depends(require_user)]
