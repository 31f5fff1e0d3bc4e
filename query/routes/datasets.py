"""GET /api/datasets and /api/datasets/{id}, also under the alias /api/dataset. Items show only the images and
featured collections the caller may see (query/items.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.actor import Actor
from infra.auth import CurrentActor
from infra.authz import visible_sql
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas_catalog import DatasetOut, DatasetPage
from query.collections import DATASETS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page
from query.items import items_sql
from query.list_docs import list_parameters
from query.listing import parse_list

router = APIRouter(tags=["datasets"])

A = DATASETS.alias


def _columns(actor: Actor) -> tuple[str, list[Any]]:
    """The dataset's fields; its items only as the caller may see them (query/items.py)."""
    items, params = items_sql(actor, f"{A}.items", f"{A}.user_id")
    return (f"{A}.id, {A}.name, {items} AS items, {A}.public, {A}.user_id, {A}.created_at, {A}.updated_at",
            params)


@router.get("/api/datasets", response_model=DatasetPage, openapi_extra=list_parameters(DATASETS))
@router.get("/api/dataset", response_model=DatasetPage, openapi_extra=list_parameters(DATASETS))
async def list_datasets(request: Request, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """Datasets the caller may see, newest first. Filters: `user`, `public`, `date`, `q` (name)."""
    query = parse_list(request.query_params, DATASETS)
    columns, params = _columns(actor)
    return await list_page(pool, DATASETS, query, actor, columns=columns, column_params=tuple(params))


@router.get("/api/datasets/{dataset_id}", response_model=DatasetOut)
@router.get("/api/dataset/{dataset_id}", response_model=DatasetOut)
async def get_dataset(dataset_id: ObjectId, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    columns, column_params = _columns(actor)
    visible, params = visible_sql(actor, f"{A}.user_id", f"{A}.public")
    row = await fetch_one(pool, f"SELECT {columns} FROM {DATASETS.table} {A} WHERE {A}.id = %s AND {visible}",
                          (*column_params, dataset_id, *params))
    if row is None:
        raise NotFound(f"No dataset with id {dataset_id}.")
    return row
