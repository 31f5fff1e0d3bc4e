"""GET /api/tags and /api/tags/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.errors import Invalid, NotFound
from infra.http import ObjectId
from infra.schemas import TagOut, TagPage
from query.consistency import Consistent
from query.db import Pool, fetch_all, fetch_one
from query.listing import parse_list_query

router = APIRouter(tags=["tags"])

COLUMNS = "id, name, user_id, created_at, updated_at"


@router.get("/api/tags", response_model=TagPage)
async def list_tags(request: Request, pool: Pool, _: Consistent) -> dict[str, Any]:
    """Tags, newest first (`sort=date+` for oldest first); `q` matches names, `user` the creator."""
    query = parse_list_query(request.query_params, {"q", "user", "user_id"})
    where: list[str] = ["true"]
    params: list[Any] = []
    for group in query.filters.get("q", []):
        where.append("(" + " OR ".join(["name ILIKE %s"] * len(group)) + ")")
        params += [f"%{v}%" for v in group]
    for name in ("user", "user_id"):
        for group in query.filters.get(name, []):
            if not all(v.isdigit() for v in group):
                raise Invalid(f"{name} must be user ids.", field=f"query.{name}")
            where.append("user_id = ANY(%s)")
            params.append([int(v) for v in group])
    order = "created_at DESC, id DESC" if query.sort == "date-" else "created_at ASC, id ASC"
    clause = " AND ".join(where)
    rows = await fetch_all(
        pool,
        f"SELECT {COLUMNS}, count(*) OVER () AS total FROM rm.tags WHERE {clause} ORDER BY {order}"
        " LIMIT %s OFFSET %s",
        [*params, query.page_size + 1, query.offset],
    )
    total = rows[0]["total"] if rows else 0
    if not rows and query.page > 1:
        counted = await fetch_one(pool, f"SELECT count(*) AS n FROM rm.tags WHERE {clause}", params)
        total = counted["n"] if counted else 0
    return {"page": query.page, "page_size": query.page_size, "total": total,
            "next": len(rows) > query.page_size,
            "list": [{k: r[k] for k in ("id", "name", "user_id", "created_at", "updated_at")}
                     for r in rows[: query.page_size]]}


@router.get("/api/tags/{tag_id}", response_model=TagOut)
async def get_tag(tag_id: ObjectId, pool: Pool, _: Consistent) -> dict[str, Any]:
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM rm.tags WHERE id = %s", (tag_id,))
    if row is None:
        raise NotFound(f"No tag with id {tag_id}.")
    return row
