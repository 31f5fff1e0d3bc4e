"""Reading images from rm.images: one image as a client sees it, and the first (plain SQL) list of images.

The list here is deliberately straightforward; the optimised list engine replaces `list_images` (same answer,
same filters), so the route stays a thin call. Visibility comes from infra/authz.visible_sql everywhere, so
details, lists and totals apply one rule.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from infra.actor import Actor
from infra.authz import visible_sql
from infra.errors import Invalid
from infra.storage import BlobStore
from query.db import fetch_all, fetch_one
from query.listing import ListQuery

MAX_ID = 2**53 - 1
IMAGE_FILTERS = {"user", "user_id", "tag", "public", "choice", "like", "q"}
IMAGE_SORTS = {"date-", "date+", "likes"}
_ORDER = {"date-": "i.created_at DESC, i.id DESC", "date+": "i.created_at ASC, i.id ASC",
          "likes": "i.likes DESC, i.created_at DESC, i.id DESC"}

_SELECT = (
    "SELECT i.id, i.name, i.width, i.height, i.prompt, i.negative_prompt, i.num_inference_steps,"
    " i.guidance_scale, i.scheduler, i.seed, i.from_image, i.model_id, i.loras, i.blob_key, i.thumbnail_key,"
    " i.public, i.likes, i.user_id, i.task_id, i.created_at, i.updated_at,"
    " ARRAY(SELECT t.name FROM unnest(i.tag_ids) WITH ORDINALITY AS x(id, n) JOIN rm.tags t ON t.id = x.id"
    " ORDER BY x.n) AS tags, {user_name} AS user_name{extra} FROM rm.images i"
)
_USER_NAME = "(SELECT u.name FROM rm.users u WHERE u.id = i.user_id AND u.deleted_at IS NULL)"


async def _select(pool: AsyncConnectionPool, extra: str = "") -> str:
    # rm.users belongs to the accounts read model; until its projector has made it, names are null.
    row = await fetch_one(pool, "SELECT to_regclass('rm.users') IS NOT NULL AS ok")
    return _SELECT.format(user_name=_USER_NAME if row and row["ok"] else "NULL::text", extra=extra)


def image_json(row: dict[str, Any], blobs: BlobStore) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("blob_key", "thumbnail_key", "user_name", "total")}
    out["url"] = blobs.url(row["blob_key"])
    out["thumbnail_url"] = blobs.url(row["thumbnail_key"]) if row["thumbnail_key"] else None
    out["user"] = {"id": row["user_id"], "name": row["user_name"]}
    return out


async def image_by_id(pool: AsyncConnectionPool, actor: Actor, image_id: int) -> dict[str, Any] | None:
    visible, params = visible_sql(actor, "i.user_id", "i.public")
    return await fetch_one(pool, f"{await _select(pool)} WHERE i.id = %s AND {visible}", [image_id, *params])


def _ids(name: str, group: list[str]) -> list[int]:
    if not all(v.isascii() and v.isdigit() and 1 <= int(v) <= MAX_ID for v in group):
        raise Invalid(f"{name} must be ids (positive integers).", field=f"query.{name}")
    return [int(v) for v in group]


def _like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _conditions(actor: Actor, filters: dict[str, list[list[str]]]) -> tuple[list[str], list[Any]]:
    """WHERE fragments: each repeated parameter is one fragment (intersection), its commas an OR (union)."""
    where: list[str] = []
    params: list[Any] = []
    for name in ("user", "user_id"):
        for group in filters.get(name, []):
            where.append("i.user_id = ANY(%s)")
            params.append(_ids(name, group))
    for group in filters.get("tag", []):  # ids or names (a tag name is never all digits)
        numeric = [v for v in group if v.isascii() and v.isdigit()]
        ids = _ids("tag", numeric) if numeric else []
        names = [v.lower() for v in group if v not in numeric]
        where.append("(i.tag_ids && %s::bigint[] OR i.tag_ids && ARRAY(SELECT id FROM rm.tags"
                     " WHERE lower(name) = ANY(%s)))")
        params += [ids, names]
    for group in filters.get("public", []):
        if not set(group) <= {"true", "false"}:
            raise Invalid("public must be true or false.", field="query.public")
        where.append("i.public = ANY(%s)")
        params.append([v == "true" for v in group])
    for group in filters.get("choice", []):
        seen, seen_params = visible_sql(actor, "c.user_id", "c.public")
        where.append("i.id IN (SELECT ci.image_id FROM rm.choice_items ci JOIN rm.choices c ON c.id = ci.choice_id"
                     f" WHERE ci.choice_id = ANY(%s) AND {seen})")
        params += [_ids("choice", group), *seen_params]
    for group in filters.get("like", []):
        where.append("i.id IN (SELECT image_id FROM rm.image_likes WHERE user_id = ANY(%s))")
        params.append(_ids("like", group))
    for group in filters.get("q", []):
        where.append("(" + " OR ".join(["i.name ILIKE %s OR i.prompt ILIKE %s"] * len(group)) + ")")
        params += [p for v in group for p in (_like_pattern(v), _like_pattern(v))]
    return where, params


async def list_images(pool: AsyncConnectionPool, actor: Actor, query: ListQuery,
                      blobs: BlobStore) -> dict[str, Any]:
    visible, params = visible_sql(actor, "i.user_id", "i.public")
    where, more = _conditions(actor, query.filters)
    clause = " AND ".join([visible, *where])
    rows = await fetch_all(
        pool,
        f"{await _select(pool, ', count(*) OVER () AS total')} WHERE {clause}"
        f" ORDER BY {_ORDER[query.sort]} LIMIT %s OFFSET %s",
        [*params, *more, query.page_size + 1, query.offset])
    total = rows[0]["total"] if rows else 0
    if not rows and query.page > 1:
        counted = await fetch_one(pool, f"SELECT count(*) AS n FROM rm.images i WHERE {clause}", [*params, *more])
        total = counted["n"] if counted else 0
    return {"page": query.page, "page_size": query.page_size, "total": total, "next": len(rows) > query.page_size,
            "list": [image_json(r, blobs) for r in rows[: query.page_size]]}
