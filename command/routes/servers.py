"""PATCH (drain, resume) and DELETE /api/servers/{id}, also under the alias /api/server/{id}: admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from command.routes.deps import Commands, CommandSide
from command.servers import Server, delete_server, set_server_status
from infra.auth import RequiredUser
from infra.http import ObjectId, written
from infra.presence import RunnerPresence
from infra.schemas_servers import ServerOut, ServerPatch, last_seen, live_status, shown_tasks

router = APIRouter(tags=["servers"])


def get_presence(services: CommandSide) -> RunnerPresence:
    return services.presence


Presence = Annotated[RunnerPresence, Depends(get_presence)]


def server_out(server: Server, presence: RunnerPresence) -> ServerOut:
    beat = presence.alive(server.number)
    tasks = shown_tasks(beat, admin=True)  # only admins reach these routes
    return ServerOut(id=server.number, name=server.name, device=server.device, memory=server.memory_bytes,
                     capabilities=server.capabilities, version=server.software_version,
                     status=live_status(server.draining, beat), task_id=tasks[0] if tasks else None,
                     task_ids=tasks, last_seen_at=last_seen(beat, server.last_report_at or server.created_on),
                     created_at=server.created_on, updated_at=server.modified_on)


@router.patch("/api/servers/{server_id}", response_model=ServerOut)
@router.patch("/api/server/{server_id}", response_model=ServerOut)
def patch_server(server_id: ObjectId, body: ServerPatch, response: Response, app: Commands,
                 presence: Presence, actor: RequiredUser) -> ServerOut:
    """`{"status": "draining"}`: the runner finishes the work it holds, takes no more, and shows `draining`
    (it notices within a few seconds); `{"status": "online"}` lets it take work again. Admins only."""
    server, seq = set_server_status(app, actor, server_id, body.status)
    written(response, seq)
    return server_out(server, presence)


@router.delete("/api/servers/{server_id}", status_code=204)
@router.delete("/api/server/{server_id}", status_code=204)
def remove_server(server_id: ObjectId, app: Commands, presence: Presence, actor: RequiredUser) -> Response:
    """Remove an offline runner from the list (admins only); 409 while its heartbeat says it is alive."""
    out = Response(status_code=204)
    written(out, delete_server(app, actor, server_id, presence.is_online))
    return out
