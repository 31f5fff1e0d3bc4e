"""The live feed's endpoints: `WS /api/tasks`, `WS /api/{collection}/{id}` and `POST /api/tickets`.

Access is checked like a GET's: `?ticket=` (single use, query/live/tickets.py), `?token=` or `Authorization`;
no token watches as anonymous (public objects only). The socket is accepted first and then closed with a code,
because a refusal before the handshake reaches a browser only as an anonymous failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from events.store.protocol import EventStore
from infra.actor import ANONYMOUS, Actor
from infra.auth import RequiredUser, actor_for_token, load_session, session_still_live
from infra.errors import ServiceError, Unauthorized
from infra.http import SEQUENCE_HEADER
from infra.services import SERVICES_KEY
from infra.settings import Settings
from infra.tokens import presented_token
from query.consistency import CallerSequences, ProjectionWatcher, token_caller_key
from query.live.hub import Hub
from query.live.socket import TOO_MANY, UNAUTHORIZED, LiveSocket
from query.live.tickets import TICKET_TTL_S, Tickets

router = APIRouter(tags=["live"])


@dataclass
class LiveFeed:
    hub: Hub
    tickets: Tickets
    queue_limit: int


class LiveServices(Protocol):
    """What the live feed uses of the app's services (aidraw/bootstrap.py builds them)."""

    @property
    def live(self) -> LiveFeed: ...
    @property
    def event_log(self) -> EventStore: ...
    @property
    def watcher(self) -> ProjectionWatcher: ...
    @property
    def caller_sequences(self) -> CallerSequences: ...
    @property
    def settings(self) -> Settings: ...


def live_services(connection: HTTPConnection) -> LiveServices:
    services: LiveServices = getattr(connection.state, SERVICES_KEY)
    return services


class TicketOut(BaseModel):
    ticket: str
    expires_in: float


@router.post("/api/tickets", status_code=201, response_model=TicketOut)
async def issue_ticket(actor: RequiredUser, request: Request) -> dict[str, Any]:
    """A single-use ticket to open one socket as `?ticket=` within `expires_in` seconds (keeps tokens out of
    URLs, which proxies log)."""
    assert actor.session_id is not None
    ticket = await live_services(request).live.tickets.issue(actor.session_id)
    return {"ticket": ticket, "expires_in": TICKET_TTL_S}


async def _actor(ws: WebSocket, feed: LiveFeed, event_log: EventStore) -> Actor:
    ticket = ws.query_params.get("ticket")
    if ticket is not None:
        session_id = await feed.tickets.redeem(ticket)
        if session_id is None:
            raise Unauthorized("The ticket is unknown, used or expired: ask for a new one (POST /api/tickets).")
        session, user = await run_in_threadpool(load_session, event_log, session_id)
        if session is None or user is None or not await session_still_live(event_log, session_id):
            raise Unauthorized("The ticket's session has ended.")
        return Actor(user_id=session.user_id, role=user.role, session_id=session_id)
    token = _token(ws)
    if not token:
        return ANONYMOUS
    actor, _ = await actor_for_token(event_log, token)
    return actor


def _token(ws: WebSocket) -> str | None:
    return ws.query_params.get("token") or presented_token(ws.headers.get("authorization"), ws.headers.get("token"))


async def _reads_own_writes(ws: WebSocket, services: LiveServices) -> None:
    """Read-your-writes for the first state, as for a GET (query/consistency.py): wait (bounded) until the
    projections reached the caller's last write, or the sequence it presents (`?sequence=` or the
    `X-Event-Sequence` header; with a ticket, the only way). A socket opened right after the POST that made its
    object then finds it, instead of closing 4404."""
    token = _token(ws)
    wanted = services.caller_sequences.last(token_caller_key(token)) if token else 0
    explicit = ws.query_params.get("sequence") or ws.headers.get(SEQUENCE_HEADER) or ""
    if explicit.isascii() and explicit.isdigit() and len(explicit) <= 18:
        wanted = max(wanted, int(explicit))
    if wanted:
        await services.watcher.wait_for(wanted, services.settings.read_your_writes_timeout_s)


async def watch(ws: WebSocket, collection: str, object_id: int | None) -> None:
    services = live_services(ws)
    feed, event_log = services.live, services.event_log
    await ws.accept()
    try:
        actor = await _actor(ws, feed, event_log)
    except ServiceError:
        await ws.close(UNAUTHORIZED)
        return
    owner = f"user:{actor.user_id}" if actor.user_id is not None else f"addr:{ws.client.host if ws.client else ''}"
    if not feed.hub.admit(owner):
        await ws.close(TOO_MANY, "too many sockets for this user")
        return
    socket = LiveSocket(ws, feed.hub, actor, collection, object_id, feed.queue_limit, event_log,
                        lambda session_id: session_still_live(event_log, session_id))
    keys = [] if object_id is None else [(collection, object_id)]
    feed.hub.watch(socket, keys)  # before the first read: a change during it is not missed
    try:
        await _reads_own_writes(ws, services)
        watching = await socket.open(services.watcher.position)
        await socket.run(watching)
    finally:
        feed.hub.unwatch(socket, keys)
        feed.hub.release(owner)


async def watch_tasks(ws: WebSocket) -> None:
    await watch(ws, "tasks", None)


async def watch_object(ws: WebSocket) -> None:
    raw = ws.path_params["object_id"]
    if not raw.isdigit() or len(raw) > 16:
        await ws.accept()
        await ws.close(4404)
        return
    await watch(ws, ws.path_params["collection"], int(raw))


def install(app: FastAPI) -> None:
    """The websocket routes (plain Starlette routes: the app's HTTP dependencies do not apply to them)."""
    app.router.add_websocket_route("/api/tasks", watch_tasks)
    app.router.add_websocket_route("/api/{collection}/{object_id}", watch_object)
