"""GET /api/params and /api/params/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.auth import CurrentActor
from infra.authz import visible_sql
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas_catalog import ParamOut, ParamPage
from query.catalog_lists import COMMON_FILTERS, common_where, fetch_page
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.listing import parse_list_query

router = APIRouter(tags=["params"])

COLUMNS = "id, name, data, public, user_id, created_at, updated_at"


@router.get("/api/params", response_model=ParamPage)
async def list_params(request: Request, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """Parameter sets the caller may see, newest first. Filters: `user`, `public`, `date`, `q` (name)."""
    query = parse_list_query(request.query_params, COMMON_FILTERS)
    where = common_where(query, request.query_params, actor, text_columns=("name",))
    return await fetch_page(pool, COLUMNS, "rm.params", where, query)


@router.get("/api/params/{param_id}", response_model=ParamOut)
async def get_param(param_id: ObjectId, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    visible, params = visible_sql(actor)
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM rm.params WHERE id = %s AND {visible}", (param_id, *params))
    if row is None:
        raise NotFound(f"No param with id {param_id}.")
    return row
