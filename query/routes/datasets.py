"""GET /api/datasets and /api/datasets/{id}, also under the alias /api/dataset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.auth import CurrentActor
from infra.authz import visible_sql
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas_catalog import DatasetOut, DatasetPage
from query.collections import DATASETS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page
from query.listing import parse_list

router = APIRouter(tags=["datasets"])

COLUMNS = "id, name, items, public, user_id, created_at, updated_at"


@router.get("/api/datasets", response_model=DatasetPage)
@router.get("/api/dataset", response_model=DatasetPage)
async def list_datasets(request: Request, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """Datasets the caller may see, newest first. Filters: `user`, `public`, `date`, `q` (name)."""
    query = parse_list(request.query_params, DATASETS)
    return await list_page(pool, DATASETS, query, actor, columns=COLUMNS)


@router.get("/api/datasets/{dataset_id}", response_model=DatasetOut)
@router.get("/api/dataset/{dataset_id}", response_model=DatasetOut)
async def get_dataset(dataset_id: ObjectId, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    visible, params = visible_sql(actor)
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM rm.datasets WHERE id = %s AND {visible}",
                          (dataset_id, *params))
    if row is None:
        raise NotFound(f"No dataset with id {dataset_id}.")
    return row
