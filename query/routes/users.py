"""GET /api/users, /api/users/{id} and /api/account. Users are public (names, roles); an email is shown only
to its owner and to admins. Deleted users are gone from lists and details."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.account_schemas import AccountOut, UserOut, UserPage
from infra.actor import Actor
from infra.auth import CurrentActor, RequiredUser
from infra.errors import NotFound
from infra.http import ObjectId
from query.collections import USERS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page
from query.list_docs import list_parameters
from query.listing import parse_list
from query.services import QuerySide

router = APIRouter(tags=["users"])

COLUMNS = "id, COALESCE(name, '[erased]') AS name, email, role, created_at, updated_at"
# What the account counts. Images come from the projected per-day counters (tag 0 = all of the owner's images:
# one row per day, not one per image); the others are small.
COUNTED = {
    "images": "SELECT COALESCE(sum(n), 0) AS n FROM rm.image_counts WHERE user_id = %s AND tag_id = 0",
    "models": "SELECT count(*) AS n FROM rm.models WHERE user_id = %s",
    "tasks": "SELECT count(*) AS n FROM rm.tasks WHERE user_id = %s",
}


def shown(actor: Actor, row: dict[str, Any]) -> dict[str, Any]:
    if not (actor.is_admin or actor.owns(row["id"])):
        row = {**row, "email": None}
    return {k: row[k] for k in ("id", "name", "email", "role", "created_at", "updated_at")}


@router.get("/api/users", response_model=UserPage, openapi_extra=list_parameters(USERS))
async def list_users(request: Request, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """Users, newest first (`sort=date+`: oldest first); `q` matches names, `role` filters by role, `date` the
    sign-up day."""
    page = await list_page(pool, USERS, parse_list(request.query_params, USERS), actor, columns=COLUMNS)
    page["list"] = [shown(actor, row) for row in page["list"]]
    return page


async def _live_user(pool: Pool, number: int) -> dict[str, Any]:
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM rm.users WHERE id = %s AND deleted_at IS NULL", (number,))
    if row is None:
        raise NotFound(f"No user with id {number}.")
    return row


@router.get("/api/users/{user_id}", response_model=UserOut)
async def get_user(user_id: ObjectId, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    return shown(actor, await _live_user(pool, user_id))


async def _count(pool: Pool, sql: str, user_id: int) -> int:
    """How many the user owns."""
    async with pool.connection() as conn:
        row = await (await conn.execute(sql, (user_id,))).fetchone()  # type: ignore[arg-type]
    return int(row["n"]) if row else 0  # type: ignore[call-overload]


@router.get("/api/account", response_model=AccountOut)
async def get_account(services: QuerySide, pool: Pool, actor: RequiredUser, _: Consistent) -> dict[str, Any]:
    """You, with how many images, models and tasks you own, and your quota use (`limit` null: none configured;
    tasks: your unfinished tasks against the per-user cap), your unfinished tasks and the runner time your tasks
    used (`gpu_seconds`)."""
    assert actor.user_id is not None
    user = shown(actor, await _live_user(pool, actor.user_id))
    counts = {name: await _count(pool, sql, actor.user_id) for name, sql in COUNTED.items()}
    quota = {name: {"used": n, "limit": None} for name, n in counts.items()}
    unfinished, run_seconds = await _task_use(pool, actor.user_id)
    quota["tasks"] = {"used": unfinished, "limit": services.settings.task_max_unfinished}
    return {**user, "counts": counts, "quota": quota, "unfinished_tasks": unfinished,
            "gpu_seconds": round(run_seconds, 3)}


async def _task_use(pool: Pool, user_id: int) -> tuple[int, float]:
    """Unfinished tasks (the per-user cap counts these) and runner seconds used (started to finished, deleted
    tasks included)."""
    unfinished = await _count(pool, "SELECT count(*) AS n FROM rm.tasks WHERE user_id = %s AND"
                              " status IN ('initial', 'ready', 'waiting', 'running')", user_id)
    row = await fetch_one(pool, "SELECT COALESCE(sum(run_seconds), 0) AS s FROM rm.task_usage WHERE user_id = %s",
                          (user_id,))
    return unfinished, float(row["s"]) if row else 0.0
