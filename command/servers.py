"""A runner as the log knows it (kind `server`): what it serves, the task it runs now, and the admins' decisions
about it (drain, resume, delete: events/servers.py). Whether it is alive is not in the log: that is its
heartbeat's business (events/heartbeats.py), which the routes pass in where a rule needs it.

The runner writes its own events (gpu_runner/reports.py); the task rules are applied from the same events by
command/run_report_loop.py. Report kinds this fold does not know (later runner versions) change nothing here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from command.aggregate import NumberedAggregate
from command.app import CommandApp, retry_on_conflict
from events.base import Changed, EventHandlers
from events.runs import RunFailed, RunProduced, RunProgressed, RunStarted, RunTrained
from events.servers import ServerDeleted, ServerDrainRequested, ServerResumed
from infra.actor import Actor
from infra.errors import Conflict, Forbidden


class Server(NumberedAggregate):
    def __init__(self, name: str, device: str, capabilities: list[str], software_version: str,
                 memory_bytes: int | None) -> None:
        self.name, self.device, self.capabilities = name, device, capabilities
        self.software_version, self.memory_bytes = software_version, memory_bytes
        self.task_id: int | None = None
        self.last_report_at: datetime | None = None
        self.draining = False
        self.deleted = False

    def drain(self, actor: Actor) -> bool:
        """Ask the runner to finish its work and take no more; False when it is draining already."""
        if self.draining:
            return False
        self.trigger_event(ServerDrainRequested, user_id=actor.user_id)
        return True

    def resume(self, actor: Actor) -> bool:
        """Let a draining runner take work again; False when it is not draining."""
        if not self.draining:
            return False
        self.trigger_event(ServerResumed, user_id=actor.user_id)
        return True

    def delete(self, actor: Actor, online: bool) -> None:
        """Forget a runner that is gone. A live one would only come back: stop it (or let it vanish) first."""
        if online:
            raise Conflict(f"Server {self.number} is online: stop the runner (drain it first to let it finish "
                           "its work), then delete it once it shows offline.")
        self.trigger_event(ServerDeleted, user_id=actor.user_id)

    def _started(self, event: RunStarted) -> None:
        self.task_id, self.last_report_at = event.task_id, event.timestamp

    def _progressed(self, event: RunProgressed) -> None:
        self.last_report_at = event.timestamp

    def _ended(self, event: RunProduced | RunTrained | RunFailed) -> None:
        if self.task_id == event.task_id:
            self.task_id = None
        self.last_report_at = event.timestamp

    def _drain_requested(self, _: ServerDrainRequested) -> None:
        self.draining = True

    def _resumed(self, _: ServerResumed) -> None:
        self.draining = False

    def _deleted(self, _: ServerDeleted) -> None:
        self.deleted = True

    def _other(self, event: Changed) -> None:
        pass

    WHEN: ClassVar[EventHandlers] = {RunStarted: _started, RunProgressed: _progressed, RunProduced: _ended,
                                     RunTrained: _ended, RunFailed: _ended, ServerDrainRequested: _drain_requested,
                                     ServerResumed: _resumed, ServerDeleted: _deleted, Changed: _other}


def _admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("Only admins may drain, resume or delete servers.")


def set_server_status(app: CommandApp, actor: Actor, number: int, status: str) -> tuple[Server, int]:
    """`draining` or `online` (an admin); 0 when the server already was so."""
    _admin(actor)

    def attempt() -> tuple[Server, int]:
        server: Server = app.load(Server, "server", number)
        changed = server.drain(actor) if status == "draining" else server.resume(actor)
        return server, app.store(server) if changed else 0

    return retry_on_conflict(attempt)


def delete_server(app: CommandApp, actor: Actor, number: int, online: Callable[[int], bool]) -> int:
    """Delete an offline server (an admin); `online(number)` says whether its heartbeat is alive."""
    _admin(actor)

    def attempt() -> int:
        server: Server = app.load(Server, "server", number)
        server.delete(actor, online(number))
        return app.store(server)

    return retry_on_conflict(attempt)
