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
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas_images import ChoiceOut, ChoicePage
from query.collections import CHOICES
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page
from query.list_docs import list_parameters
from query.listing import parse_list

router = APIRouter(tags=["choices"])


def _columns(actor: Actor) -> tuple[str, list[Any]]:
    seen, params = visible_sql(actor, "i.user_id", "i.public")
    return (
        "c.id, c.name, c.public, c.user_id, c.created_at, c.updated_at, COALESCE((SELECT json_agg("
        "json_build_object('image_id', ci.image_id, 'weight', ci.weight) ORDER BY ci.position) FROM"
        f" rm.choice_items ci JOIN rm.images i ON i.id = ci.image_id WHERE ci.choice_id = c.id AND {seen}),"
        " '[]'::json) AS items", params)


@router.get("/api/choices", response_model=ChoicePage, openapi_extra=list_parameters(CHOICES))
async def list_choices(request: Request, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """Featured collections you may see, newest first; filters `user`, `public`, `date`, `q` (name)."""
    query = parse_list(request.query_params, CHOICES)
    columns, params = _columns(actor)
    return await list_page(pool, CHOICES, query, actor, columns=columns, column_params=tuple(params))


@router.get("/api/choices/{choice_id}", response_model=ChoiceOut)
async def get_choice(choice_id: ObjectId, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """One featured collection (404 when it does not exist or is another user's private one)."""
    columns, column_params = _columns(actor)
    visible, params = visible_sql(actor, "c.user_id", "c.public")
    row = await fetch_one(pool, f"SELECT {columns} FROM rm.choices c WHERE c.id = %s AND {visible}",
                          [*column_params, choice_id, *params])
    if row is None:
        raise NotFound(f"No featured collection with id {choice_id}.")
    return row
