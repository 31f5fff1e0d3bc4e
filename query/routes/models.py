"""GET /api/models and /api/models/{id}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from infra.actor import Actor
from infra.auth import CurrentActor
from infra.authz import visible_sql
from infra.errors import NotFound
from infra.http import ObjectId
from infra.model_files import file_url
from infra.schemas_catalog import ModelOut, ModelPage
from query.collections import MODELS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page
from query.items import IMAGES_TABLE, items_sql, shown_id_sql
from query.list_docs import list_parameters
from query.listing import parse_list
from query.services import Blobs

router = APIRouter(tags=["models"])

# Tag names in the model's order (deleted tags drop out); the cover's blob key only when the caller may see the
# cover image (a deleted or hidden cover shows as none). The cover's id, the source and the training data show
# only what the caller may see (query/items.py): another user's private image is never named to others.
COLUMNS = (
    "m.id, m.name, m.type, m.base_model, m.trigger_words, m.model_path, m.status, m.progress,"
    " {image_id} AS image_id, m.public, m.user_id, {source} AS source, {dataset} AS dataset, m.created_at,"
    " m.updated_at, m.training, {own} AS task_id, {own_error} AS error,"
    " ARRAY(SELECT t.name FROM rm.tags t WHERE t.id = ANY(m.tag_ids) ORDER BY array_position(m.tag_ids, t.id))"
    " AS tags,"
    " (SELECT i.blob_key FROM rm.images i WHERE i.id = m.cover_image_id AND {cover_visible}) AS cover_key"
)


def blob_urls(store: Blobs) -> Callable[[str], str]:
    return store.url


BlobUrls = Annotated[Callable[[str], str], Depends(blob_urls)]


def _columns(actor: Actor) -> tuple[str, tuple[Any, ...]]:
    image_id, image_params = shown_id_sql(actor, IMAGES_TABLE, "m.cover_image_id", "m.user_id")
    source, source_params = shown_id_sql(actor, MODELS.table, "m.source", "m.user_id")
    dataset, dataset_params = items_sql(actor, "m.data", "m.user_id")
    cover_visible, cover_params = visible_sql(actor, owner_col="i.user_id", public_col="i.public")
    mine, mine_params = _owner_sql(actor)
    columns = COLUMNS.format(image_id=image_id, source=source, dataset=dataset, cover_visible=cover_visible,
                             own=f"CASE WHEN {mine} THEN m.task_id END",
                             own_error=f"CASE WHEN m.status = 'error' AND {mine} THEN m.error END")
    return columns, (*image_params, *source_params, *dataset_params, *mine_params, *mine_params, *cover_params)


def _owner_sql(actor: Actor) -> tuple[str, tuple[Any, ...]]:
    """The training's task and failure reason are the owner's (and admins') business: tasks are never public."""
    if actor.is_admin:
        return "true", ()
    if actor.user_id is None:
        return "false", ()
    return "m.user_id = %s", (actor.user_id,)


def _shaped(row: dict[str, Any], url_of: Callable[[str], str]) -> dict[str, Any]:
    key = row.pop("cover_key")
    row["image"] = url_of(key) if key else None
    row["model_path"] = file_url(row["id"], row["model_path"])
    return row


@router.get("/api/models", response_model=ModelPage, openapi_extra=list_parameters(MODELS))
async def list_models(request: Request, pool: Pool, actor: CurrentActor, url_of: BlobUrls,
                      _: Consistent) -> dict[str, Any]:
    """Models the caller may see, newest first (`sort=date+`: oldest first). Filters: `user`, `tag` (name or
    id), `public`, `date`, `status`, `type`, `base_model`, `q` (name and trigger words)."""
    query = parse_list(request.query_params, MODELS)
    columns, params = _columns(actor)
    page = await list_page(pool, MODELS, query, actor, columns=columns, column_params=params)
    page["list"] = [_shaped(row, url_of) for row in page["list"]]
    return page


@router.get("/api/models/{model_id}", response_model=ModelOut)
async def get_model(model_id: ObjectId, pool: Pool, actor: CurrentActor, url_of: BlobUrls,
                    _: Consistent) -> dict[str, Any]:
    columns, params = _columns(actor)
    visible, visible_params = visible_sql(actor, owner_col="m.user_id", public_col="m.public")
    row = await fetch_one(pool, f"SELECT {columns} FROM rm.models m WHERE m.id = %s AND {visible}",
                          (*params, model_id, *visible_params))
    if row is None:
        raise NotFound(f"No model with id {model_id}.")
    return _shaped(row, url_of)
