"""GET /api/tags and /api/tags/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.auth import CurrentActor
from infra.authz import visible_sql
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas import TagOut, TagPage
from query.collections import TAG_IS_PUBLIC, TAGS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page
from query.list_docs import list_parameters
from query.listing import parse_list

router = APIRouter(tags=["tags"])

COLUMNS = "id, name, user_id, created_at, updated_at"


@router.get("/api/tags", response_model=TagPage, openapi_extra=list_parameters(TAGS))
async def list_tags(request: Request, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """Tags the caller may see, newest first (`sort=date+` for oldest first): those a public image or model
    carries, and the caller's own. `q` matches names, `user` the creator, `date` the creation day."""
    query = parse_list(request.query_params, TAGS)
    return await list_page(pool, TAGS, query, actor, columns=COLUMNS)


@router.get("/api/tags/{tag_id}", response_model=TagOut)
async def get_tag(tag_id: ObjectId, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    visible, params = visible_sql(actor, "t.user_id", TAG_IS_PUBLIC)
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM rm.tags t WHERE t.id = %s AND {visible}", (tag_id, *params))
    if row is None:
        raise NotFound(f"No tag with id {tag_id}.")
    return row
