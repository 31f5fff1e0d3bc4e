"""GET /api/images and /api/images/{id}; a logged-in detail GET records a view (browsing history)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.auth import CurrentActor
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas_images import ImageOut, ImagePage
from query.collections import IMAGES
from query.consistency import Consistent
from query.db import Pool
from query.image_queries import image_by_id, image_json, list_images
from query.list_docs import list_parameters
from query.listing import parse_list
from query.services import Blobs, Views

router = APIRouter(tags=["images"])


@router.get("/api/images", response_model=ImagePage, openapi_extra=list_parameters(IMAGES))
async def get_images(request: Request, pool: Pool, blobs: Blobs, actor: CurrentActor, _: Consistent
                     ) -> dict[str, Any]:
    """Images you may see, newest first. Filters: `user`, `tag` (names or ids), `public`, `date`, `choice`,
    `like` (a user id), `q` (name and prompt); `sort=date-|date+|likes`. Commas are alternatives, repeats all
    apply. Paging: `page` and `page_size`, or the answer's `cursor` (docs/api.md "Lists")."""
    query = parse_list(request.query_params, IMAGES)
    return await list_images(pool, actor, query, blobs)


@router.get("/api/images/{image_id}", response_model=ImageOut)
async def get_image(image_id: ObjectId, request: Request, pool: Pool, blobs: Blobs, views: Views,
                    actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """One image (404 when it does not exist or is another user's private image)."""
    row = await image_by_id(pool, actor, image_id)
    if row is None:
        raise NotFound(f"No image with id {image_id}.")
    if actor.user_id is not None and not request.scope.get("aidraw.live"):  # the live feed's reload is no view
        views.record(actor.user_id, image_id)  # never waits: a lost view is a lost line of history
    return image_json(row, blobs)
