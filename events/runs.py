"""What a runner reports, as events of its own: the runner's half of the task lifecycle.

Each runner process is a `server` aggregate (`<prefix>.server.<id>`, a fresh id per start) and appends its
reports there through the AsyncEventStore, one writer per aggregate, so versions rise without conflicts and
the reports of one runner are read back in the order it made them. The runner states facts only; the command
side (command/run_report_loop.py) reads these events and applies each with command/run_reports.py, where the
task's rules decide whether the fact still counts (late, repeated and stale reports change nothing).
"""

from __future__ import annotations

from typing import Any

from events.base import Changed, Created


class RunnerStarted(Created):
    """A runner came up: what it is and what it serves (the servers list builds on it). class_version 2 added
    `memory_bytes`, the device's memory (None: unknown, and every v1 runner)."""

    class_version = 2
    name: str
    device: str
    capabilities: list[str]
    software_version: str
    memory_bytes: int | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["memory_bytes"] = None


class RunStarted(Changed):
    """The runner took delivery `attempt` (from 1) of the task's work item and is about to run it."""

    task_id: int
    attempt: int
    server_name: str


class RunProgressed(Changed):
    """The task passed a milestone (0..100); finer progress goes on the task's progress subject only."""

    task_id: int
    attempt: int
    progress: int


class RunProduced(Changed):
    """The task's pictures are stored. Each picture: blob_key, thumbnail_key, content_type, width, height, seed,
    descriptor (the fields of command/run_reports.py `ProducedImage`)."""

    task_id: int
    attempt: int
    pictures: list[dict[str, Any]]
    prompt_handling: str


class RunFailed(Changed):
    """The attempt failed with `reason` (said to the user); `final`: no further attempt will come."""

    task_id: int
    attempt: int
    reason: str
    final: bool


class RunTrained(Changed):
    """A training task's artefact is stored: `artefact_key` (safetensors in the blob store, `artefact_bytes` long),
    the loss at fixed noise before and after, the optimizer steps done, and `cover`, a picture made with the model
    and its trigger words (the fields of RunProduced's pictures), or None when none could be made."""

    task_id: int
    attempt: int
    model_id: int
    artefact_key: str
    artefact_bytes: int
    loss_before: float
    loss_after: float
    steps: int
    cover: dict[str, Any] | None
