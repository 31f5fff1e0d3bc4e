"""GET /api/tasks and /api/tasks/{id}: the caller's tasks (an admin's view: everyone's). Tasks are never public:
another user's task is unknown to the caller (404)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.auth import RequiredUser
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas_tasks import TaskOut, TaskPage
from query.collections import TASKS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page, visibility_sql
from query.list_docs import list_parameters
from query.listing import parse_list

router = APIRouter(tags=["tasks"])

COLUMNS = (
    "k.id, k.name, k.type, k.status, k.progress, k.data, k.result, k.error, k.waiting_reason, k.server_id,"
    " k.server_name, k.attempt, k.public, k.user_id, k.created_at, k.updated_at, k.started_at, k.finished_at,"
    " ARRAY(SELECT t.name FROM rm.tags t WHERE t.id = ANY(k.tag_ids) ORDER BY array_position(k.tag_ids, t.id))"
    " AS tags"
)


@router.get("/api/tasks", response_model=TaskPage, openapi_extra=list_parameters(TASKS))
async def list_tasks(request: Request, pool: Pool, actor: RequiredUser, _: Consistent) -> dict[str, Any]:
    """Your tasks, newest first (`sort=date+`: oldest first); an admin sees everyone's (`user=` narrows).
    Filters: `user`, `status`, `type` (inference, train), `date`, `tag` (the tags asked for its images)."""
    return await list_page(pool, TASKS, parse_list(request.query_params, TASKS), actor, columns=COLUMNS)


@router.get("/api/tasks/{task_id}", response_model=TaskOut)
async def get_task(task_id: ObjectId, pool: Pool, actor: RequiredUser, _: Consistent) -> dict[str, Any]:
    """The task (its owner or an admin; 404 to anyone else)."""
    visible, params = visibility_sql(TASKS, actor)
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM rm.tasks k WHERE k.id = %s AND {visible}",
                          (task_id, *params))
    if row is None:
        raise NotFound(f"No task with id {task_id}.")
    return row
