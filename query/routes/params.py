"""GET /api/params and /api/params/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.auth import CurrentActor
from infra.authz import visible_sql
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas_catalog import ParamOut, ParamPage
from query.collections import PARAMS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page
from query.list_docs import list_parameters
from query.listing import parse_list

router = APIRouter(tags=["params"])

COLUMNS = "id, name, data, public, user_id, created_at, updated_at"


@router.get("/api/params", response_model=ParamPage, openapi_extra=list_parameters(PARAMS))
async def list_params(request: Request, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """Parameter sets the caller may see, newest first. Filters: `user`, `public`, `date`, `q` (name)."""
    query = parse_list(request.query_params, PARAMS)
    return await list_page(pool, PARAMS, query, actor, columns=COLUMNS)


@router.get("/api/params/{param_id}", response_model=ParamOut)
async def get_param(param_id: ObjectId, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    visible, params = visible_sql(actor)
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM rm.params WHERE id = %s AND {visible}", (param_id, *params))
    if row is None:
        raise NotFound(f"No param with id {param_id}.")
    return row
