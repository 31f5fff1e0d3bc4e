"""GET /api/servers and /api/servers/{id} (alias /api/server/{id}): the registered runners as the log knows
them (rm.servers), each with its live status from the heartbeats (infra/presence.py) joined in when asked.

Any logged-in user may list them (whether capacity is there is everyone's business); the tasks a runner is
running are an admin's business only (another user's task is not the caller's to know of)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.actor import Actor
from infra.auth import RequiredUser
from infra.errors import NotFound
from infra.http import ObjectId
from infra.presence import RunnerPresence
from infra.schemas_servers import ServerOut, ServerPage, last_seen, live_status, shown_tasks
from query.collections import SERVERS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page
from query.list_docs import list_parameters
from query.listing import parse_list
from query.services import Presence

router = APIRouter(tags=["servers"])

A = SERVERS.alias
COLUMNS = (f"{A}.id, {A}.name, {A}.device, {A}.memory_bytes, {A}.capabilities, {A}.software_version, {A}.draining,"
           f" {A}.last_report_at, {A}.created_at, {A}.updated_at")


def server_view(row: dict[str, Any], presence: RunnerPresence, actor: Actor) -> dict[str, Any]:
    beat = presence.alive(int(row["id"]))
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
    (no heartbeat within `AIDRAW_RUNNER_TTL`). Filters: `date`, `q` (name)."""
    page = await list_page(pool, SERVERS, parse_list(request.query_params, SERVERS), actor, columns=COLUMNS)
    page["list"] = [server_view(row, presence, actor) for row in page["list"]]
    return page


@router.get("/api/servers/{server_id}", response_model=ServerOut)
@router.get("/api/server/{server_id}", response_model=ServerOut)
async def get_server(server_id: ObjectId, pool: Pool, presence: Presence, actor: RequiredUser,
                     _: Consistent) -> dict[str, Any]:
    """One runner (any logged-in user; its task ids to admins only)."""
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM {SERVERS.table} {A} WHERE {A}.id = %s", (server_id,))
    if row is None:
        raise NotFound(f"No server with id {server_id}.")
    return server_view(row, presence, actor)
