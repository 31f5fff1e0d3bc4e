"""PATCH (cancel) / DELETE /api/tasks/{id}, and the task as the command side answers it (also for a generation
request, which command/routes/images.py takes at POST /api/images)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from command.app import CommandApp
from command.routes.deps import Commands
from command.tag_refs import tag_names
from command.tasks import Task, cancel_task, delete_task
from events.tasks import task_result as result_of
from infra.auth import RequiredUser
from infra.http import ObjectId, written
from infra.schemas_tasks import TaskOut, TaskPatch

router = APIRouter(tags=["tasks"])


def task_result(task: Task) -> dict[str, Any] | None:
    if task.status != "success":
        return None
    return result_of(task.image_ids, task.prompt_handling, task.model_path)


def task_out(app: CommandApp, task: Task) -> TaskOut:
    return TaskOut(
        id=task.number, name=task.name, type=task.type, status=task.status, progress=task.progress,
        data={k: v for k, v in task.data.items() if k != "source_key"}, result=task_result(task), error=task.error,
        waiting_reason=task.waiting_reason, server_id=task.server_id, server_name=task.server_name,
        attempt=task.attempt, tags=tag_names(app, task.tag_ids), public=task.public, user_id=task.user_id,
        created_at=task.created_on, updated_at=task.modified_on, started_at=task.started_at,
        finished_at=task.finished_at)


@router.patch("/api/tasks/{task_id}", response_model=TaskOut)
def patch_task(task_id: ObjectId, body: TaskPatch, response: Response, app: Commands,
               actor: RequiredUser) -> TaskOut:
    """Cancel the task: `{"status": "canceled"}` is the only change a client may make (owner or admin). A running
    task stops at its next step and stores no image; canceling a canceled task changes nothing; a task that has
    already succeeded or failed answers 409."""
    task, seq = cancel_task(app, actor, task_id)
    written(response, seq)
    return task_out(app, task)


@router.delete("/api/tasks/{task_id}", status_code=204)
def remove_task(task_id: ObjectId, app: Commands, actor: RequiredUser) -> Response:
    """Delete the task (owner or admin); an unfinished one is canceled first. The images it made stay."""
    out = Response(status_code=204)
    written(out, delete_task(app, actor, task_id))
    return out
