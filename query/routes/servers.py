"""GET /api/servers and /api/servers/{id} (alias /api/server/{id}): the registered runners as the log knows
them (rm.servers), each with its live status from the heartbeats (infra/presence.py) joined in when asked.

Any logged-in user may list them (whether capacity is there is everyone's business); the tasks a runner is
running are an admin's business only (another user's task is not the caller's to know of)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request

from events.heartbeats import Heartbeat
from infra.actor import Actor
from infra.auth import RequiredUser
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas_servers import ServerOut, ServerPage, last_seen, live_status, shown_tasks
from query.collections import SERVERS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page
from query.filters import LiveStatus
from query.list_docs import list_parameters
from query.listing import ListQuery, parse_list
from query.services import Presence

router = APIRouter(tags=["servers"])

A = SERVERS.alias
COLUMNS = (f"{A}.id, {A}.name, {A}.device, {A}.memory_bytes, {A}.capabilities, {A}.software_version, {A}.draining,"
           f" {A}.last_report_at, {A}.created_at, {A}.updated_at")


def server_view(row: dict[str, Any], beat: Heartbeat | None, actor: Actor) -> dict[str, Any]:
    """One row with its live status, from `beat` (its heartbeat while alive; None: offline)."""
    tasks = shown_tasks(beat, actor.is_admin)
    return {"id": row["id"], "name": row["name"], "device": row["device"], "memory": row["memory_bytes"],
            "capabilities": row["capabilities"], "version": row["software_version"],
            "status": live_status(row["draining"], beat), "task_id": tasks[0] if tasks else None,
            "task_ids": tasks, "last_seen_at": last_seen(beat, row["last_report_at"]),
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


@router.get("/api/servers", response_model=ServerPage, openapi_extra=list_parameters(SERVERS))
async def list_servers(request: Request, pool: Pool, presence: Presence, actor: RequiredUser,
                       _: Consistent) -> dict[str, Any]:
    """The runners that registered and were not deleted, newest first, each online, busy, draining or offline
    (no heartbeat within `AIDRAW_RUNNER_TTL`). Filters: `date`, `q` (name), `status`."""
    beats = presence.everyone()  # one look at the heartbeats: the filter and the statuses shown agree
    query = with_heartbeats(parse_list(request.query_params, SERVERS), beats)
    page = await list_page(pool, SERVERS, query, actor, columns=COLUMNS)
    page["list"] = [server_view(row, beats.get(int(row["id"])), actor) for row in page["list"]]
    return page


def with_heartbeats(query: ListQuery, beats: dict[int, Heartbeat]) -> ListQuery:
    """`query` with the live runners joined into its `status=` conditions (query/filters.py LiveStatus)."""
    live = LiveStatus(alive=frozenset(beats), busy=frozenset(i for i, beat in beats.items() if beat.task_ids))
    return replace(query, conditions=tuple(replace(c, filter=live) if isinstance(c.filter, LiveStatus) else c
                                           for c in query.conditions))


@router.get("/api/servers/{server_id}", response_model=ServerOut)
@router.get("/api/server/{server_id}", response_model=ServerOut)
async def get_server(server_id: ObjectId, pool: Pool, presence: Presence, actor: RequiredUser,
                     _: Consistent) -> dict[str, Any]:
    """One runner (any logged-in user; its task ids to admins only)."""
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM {SERVERS.table} {A} WHERE {A}.id = %s", (server_id,))
    if row is None:
        raise NotFound(f"No server with id {server_id}.")
    return server_view(row, presence.alive(server_id), actor)
