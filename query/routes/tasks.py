"""GET /api/tasks and /api/tasks/{id}: the caller's tasks (an admin's view: everyone's). Tasks are never public:
another user's task is unknown to the caller (404)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request

from infra.auth import RequiredUser
from infra.errors import NotFound
from infra.http import ObjectId
from infra.model_files import file_url
from infra.presence import RunnerPresence
from infra.schemas_tasks import TaskOut, TaskPage
from infra.storage import BlobStore
from query.collections import TASKS
from query.consistency import Consistent
from query.db import Pool, fetch_all, fetch_one
from query.engine import list_page, visibility_sql
from query.list_docs import list_parameters
from query.listing import parse_list
from query.services import Blobs, Presence

router = APIRouter(tags=["tasks"])

COLUMNS = (
    "k.id, k.name, k.type, k.status, k.progress, k.data, k.result, k.error, k.waiting_reason, k.server_id,"
    " k.server_name, k.attempt, k.public, k.user_id, k.created_at, k.updated_at, k.started_at, k.finished_at,"
    " k.capability,"
    " ARRAY(SELECT t.name FROM rm.tags t WHERE t.id = ANY(k.tag_ids) ORDER BY array_position(k.tag_ids, t.id))"
    " AS tags"
)


@router.get("/api/tasks", response_model=TaskPage, openapi_extra=list_parameters(TASKS))
async def list_tasks(request: Request, pool: Pool, presence: Presence, actor: RequiredUser,
                     _: Consistent) -> dict[str, Any]:
    """Your tasks, newest first (`sort=date+`: oldest first); an admin sees everyone's (`user=` narrows).
    Filters: `user`, `status`, `type` (inference, train), `date`, `tag` (the tags asked for its images)."""
    page = await list_page(pool, TASKS, parse_list(request.query_params, TASKS), actor, columns=COLUMNS)
    for row in page["list"]:
        say_why_waiting(row, presence)
        _shown_model_path(row)
    return page


def describe(capability: str) -> str:
    if capability == "default":
        return "the default base model"
    if capability.startswith("base-"):
        return f"base model {capability.removeprefix('base-')}"
    if capability.startswith("train-"):
        return f"training on {describe(capability.removeprefix('train-'))}"
    return capability


def say_why_waiting(row: dict[str, Any], presence: RunnerPresence) -> int | None:
    """A waiting task that no live runner serves says so after the reason the log gives (the heartbeats know it
    now; the log cannot); the number of live runners that serve it, None for a task that is not waiting."""
    capability = row.get("capability")
    if row["status"] != "waiting" or not capability:
        return None
    runners = presence.serving(capability)
    if runners == 0:
        hint = f"no runner online serves {describe(capability)}: it starts when one does"
        row["waiting_reason"] = f"{row['waiting_reason']}; {hint}" if row.get("waiting_reason") else hint
    return runners


def _shown_model_path(row: dict[str, Any]) -> None:
    """A train task's `result.model_path` as the model shows it: where the file downloads, not its storage key."""
    result = row.get("result")
    if result and result.get("model_path"):
        row["result"] = {**result, "model_path": file_url(int(row["data"]["model_id"]), result["model_path"])}


# A waiting task's place: the waiting tasks of its capability that go before it (released ones first, then the
# fair order the scheduler recorded), and the mean run time of the recent runs of that capability, from which
# its start is estimated (shared among the runners alive now that serve it).
PLACE = (
    "SELECT (SELECT count(*) FROM rm.tasks o WHERE o.status = 'waiting' AND o.capability = k.capability"
    "   AND o.id <> k.id AND ((o.released AND NOT k.released) OR (o.released = k.released AND o.queue_order IS NOT"
    "   NULL AND (o.queue_order, o.id) < (k.queue_order, k.id)))) AS position,"
    " (SELECT avg(extract(epoch FROM r.finished_at - r.started_at)) FROM (SELECT finished_at, started_at FROM"
    "   rm.tasks WHERE capability = k.capability AND status = 'success' ORDER BY finished_at DESC LIMIT 50) r)"
    "   AS run_s"
    " FROM rm.tasks k WHERE k.id = %s AND k.status = 'waiting' AND k.queue_order IS NOT NULL"
)


async def queue_place(pool: Pool, task_id: int, runners: int) -> tuple[int | None, datetime | None]:
    """(position, estimated start) of a waiting task the scheduler has placed, with `runners` alive serving it;
    (None, None) otherwise. No estimate while no runner serves it, nor before one run of its kind."""
    place = await fetch_one(pool, PLACE, (task_id,))
    if place is None:
        return None, None
    position = int(place["position"])
    if place["run_s"] is None or runners == 0:
        return position, None
    wait = (position + 1) * float(place["run_s"]) / runners
    return position, datetime.now(UTC) + timedelta(seconds=wait)


async def made_images(pool: Pool, blobs: BlobStore, image_ids: list[int]) -> list[dict[str, Any]]:
    """`{id, url, thumbnail_url}` of each image a task made that still exists, in the task's order."""
    rows = await fetch_all(pool, "SELECT id, blob_key, thumbnail_key FROM rm.images WHERE id = ANY(%s)"
                                 " ORDER BY array_position(%s, id)", (image_ids, image_ids))
    return [{"id": r["id"], "url": blobs.url(r["blob_key"]),
             "thumbnail_url": blobs.url(r["thumbnail_key"]) if r["thumbnail_key"] else None} for r in rows]


@router.get("/api/tasks/{task_id}", response_model=TaskOut)
async def get_task(task_id: ObjectId, pool: Pool, blobs: Blobs, presence: Presence, actor: RequiredUser,
                   _: Consistent) -> dict[str, Any]:
    """The task (its owner or an admin; 404 to anyone else). A waiting task says why (`waiting_reason`), how many
    tasks go before it (`queue_position`) and when it may start (`estimated_start_at`, from recent runs). A
    finished one lists the images it made with their URLs (`result.images`)."""
    visible, params = visibility_sql(TASKS, actor)
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM rm.tasks k WHERE k.id = %s AND {visible}",
                          (task_id, *params))
    if row is None:
        raise NotFound(f"No task with id {task_id}.")
    runners = say_why_waiting(row, presence)
    if runners is not None:
        row["queue_position"], row["estimated_start_at"] = await queue_place(pool, task_id, runners)
    _shown_model_path(row)
    if row["result"] and row["result"].get("image_ids"):
        row["result"] = {**row["result"], "images": await made_images(pool, blobs, row["result"]["image_ids"])}
    return row
