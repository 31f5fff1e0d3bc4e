"""A train task's model follows the task, in the same write as each of the task's transitions.

Every handler that changes a task (command/tasks.py cancel and delete, command/run_reports.py started, progress,
failed) stores `followers(app, task)` beside it: for a train task, its model with the task's new state applied
(`Model.follow_task`: waiting, running, a milestone, error, or back to its earlier status on a cancel). So a model
is never seen training on a task that has ended. The success is command/run_reports.py `record_trained`.
"""

from __future__ import annotations

from typing import Any, Protocol

from command.app import CommandApp
from command.models import Model
from infra.errors import NotFound


class TaskState(Protocol):
    """What a task shows of itself here (command/tasks.py `Task`, which imports this module)."""

    @property
    def number(self) -> int: ...
    type: str
    data: dict[str, Any]
    status: str
    progress: int
    error: str | None


def model_of(app: CommandApp, task: TaskState) -> Model | None:
    """The model a train task trains (None for any other task, or a model gone meanwhile)."""
    model_id = task.data.get("model_id")
    if task.type != "train" or not isinstance(model_id, int):
        return None
    try:
        return app.load(Model, "model", model_id)
    except NotFound:
        return None


def followers(app: CommandApp, task: TaskState) -> list[Model]:
    """The task's model, changed to follow the task's state, when it changed; else nothing to store."""
    model = model_of(app, task)
    if model is None or not model.follow_task(task.number, task.status, task.progress, task.error):
        return []
    return [model]
