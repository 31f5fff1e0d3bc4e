"""The shapes clients see for the runners (`/api/servers`, docs/runners.md): the registration from the log, the
live status from the heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, get_args

from pydantic import BaseModel

from events.heartbeats import Heartbeat
from infra.schemas import Input, Page

ServerStatus = Literal["online", "busy", "draining", "offline"]
SERVER_STATUSES: tuple[ServerStatus, ...] = get_args(ServerStatus)


class ServerPatch(Input):
    """What an admin may change: `draining` (finish the work at hand, take no more) or back to `online`."""

    status: Literal["draining", "online"]


class ServerOut(BaseModel):
    id: int
    name: str
    device: str
    memory: int | None  # bytes: the device's memory (a GPU's total; the machine's RAM for a CPU runner)
    capabilities: list[str]  # what it serves: `default`, `base-<model id>`
    version: str
    status: ServerStatus
    task_id: int | None  # busy: the task it runs (admins only; others see null)
    task_ids: list[int]  # every task of the batch at hand (admins only)
    last_seen_at: datetime  # its last heartbeat; offline: its last report in the log
    created_at: datetime
    updated_at: datetime


class ServerPage(Page):
    list: list[ServerOut]  # type: ignore[assignment]


def live_status(draining: bool, beat: Heartbeat | None) -> ServerStatus:
    """offline without a live heartbeat; else draining as the log says (an admin's word counts at once, before
    the runner has noticed), else busy or online as the runner says."""
    if beat is None:
        return "offline"
    if draining:
        return "draining"
    return "busy" if beat.task_ids else "online"


def last_seen(beat: Heartbeat | None, last_report_at: datetime) -> datetime:
    return datetime.fromtimestamp(beat.at, UTC) if beat is not None else last_report_at


def shown_tasks(beat: Heartbeat | None, admin: bool) -> list[int]:
    return list(beat.task_ids) if beat is not None and admin else []
