"""GET /api/choices and /api/choices/{id} (featured collections).

Items show only images the caller may see (a public collection of someone's private images shows none of
them), in the owner's order.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.actor import Actor
from infra.auth import CurrentActor
from infra.authz import visible_sql
from infra.errors import Invalid, NotFound
from infra.http import ObjectId
from infra.schemas_images import ChoiceOut, ChoicePage
from query.consistency import Consistent
from query.db import Pool, fetch_all, fetch_one
from query.listing import parse_list_query
from query.read_models import read_model_ready

router = APIRouter(tags=["choices"])

MAX_ID = 2**53 - 1
_ORDER = {"date-": "c.created_at DESC, c.id DESC", "date+": "c.created_at ASC, c.id ASC"}


def _select(actor: Actor, extra: str = "") -> tuple[str, list[Any]]:
    seen, params = visible_sql(actor, "i.user_id", "i.public")
    return (
        "SELECT c.id, c.name, c.public, c.user_id, c.created_at, c.updated_at, COALESCE((SELECT json_agg("
        "json_build_object('image_id', ci.image_id, 'weight', ci.weight) ORDER BY ci.position) FROM"
        f" rm.choice_items ci JOIN rm.images i ON i.id = ci.image_id WHERE ci.choice_id = c.id AND {seen}),"
        f" '[]'::json) AS items{extra} FROM rm.choices c", params)


def _where(actor: Actor, filters: dict[str, list[list[str]]]) -> tuple[str, list[Any]]:
    visible, params = visible_sql(actor, "c.user_id", "c.public")
    where = [visible]
    for name in ("user", "user_id"):
        for group in filters.get(name, []):
            if not all(v.isascii() and v.isdigit() and 1 <= int(v) <= MAX_ID for v in group):
                raise Invalid(f"{name} must be user ids.", field=f"query.{name}")
            where.append("c.user_id = ANY(%s)")
            params.append([int(v) for v in group])
    for group in filters.get("public", []):
        if not set(group) <= {"true", "false"}:
            raise Invalid("public must be true or false.", field="query.public")
        where.append("c.public = ANY(%s)")
        params.append([v == "true" for v in group])
    for group in filters.get("q", []):
        where.append("(" + " OR ".join(["c.name ILIKE %s"] * len(group)) + ")")
        params += ["%" + v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for v in group]
    return " AND ".join(where), params


@router.get("/api/choices", response_model=ChoicePage)
async def list_choices(request: Request, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """Featured collections you may see, newest first; filters `user`, `public`, `q` (name)."""
    query = parse_list_query(request.query_params, {"user", "user_id", "public", "q"})
    select, select_params = _select(actor, ", count(*) OVER () AS total")
    clause, params = _where(actor, query.filters)
    async with read_model_ready():
        rows = await fetch_all(pool, f"{select} WHERE {clause} ORDER BY {_ORDER[query.sort]} LIMIT %s OFFSET %s",
                               [*select_params, *params, query.page_size + 1, query.offset])
        total = rows[0]["total"] if rows else 0
        if not rows and query.page > 1:
            counted = await fetch_one(pool, f"SELECT count(*) AS n FROM rm.choices c WHERE {clause}", params)
            total = counted["n"] if counted else 0
    return {"page": query.page, "page_size": query.page_size, "total": total, "next": len(rows) > query.page_size,
            "list": [{k: v for k, v in r.items() if k != "total"} for r in rows[: query.page_size]]}


@router.get("/api/choices/{choice_id}", response_model=ChoiceOut)
async def get_choice(choice_id: ObjectId, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """One featured collection (404 when it does not exist or is another user's private one)."""
    select, select_params = _select(actor)
    visible, params = visible_sql(actor, "c.user_id", "c.public")
    async with read_model_ready():
        row = await fetch_one(pool, f"{select} WHERE c.id = %s AND {visible}", [*select_params, choice_id, *params])
    if row is None:
        raise NotFound(f"No featured collection with id {choice_id}.")
    return row
