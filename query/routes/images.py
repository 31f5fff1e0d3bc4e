"""GET /api/images and /api/images/{id}; a logged-in detail GET records a view (browsing history)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, FastAPI, Request

from events.views import ViewPublisher, views_prefix, views_stream_name
from infra.auth import CurrentActor
from infra.errors import NotFound
from infra.http import ObjectId
from infra.schemas_images import ImageOut, ImagePage
from infra.settings import Settings
from query.collections import IMAGES
from query.consistency import Consistent
from query.db import Pool
from query.image_queries import image_by_id, image_json, list_images
from query.list_docs import list_parameters
from query.listing import parse_list

router = APIRouter(tags=["images"])
log = logging.getLogger("aidraw.views")


def _view_publisher(app: FastAPI) -> ViewPublisher:
    publisher: ViewPublisher | None = getattr(app.state, "view_publisher", None)
    if publisher is None:
        settings: Settings = app.state.settings
        publisher = ViewPublisher(app.state.event_log.bridge, views_stream_name(settings.stream_name),
                                  views_prefix(settings.subject_prefix), settings.views_max_age_s)
        app.state.view_publisher = publisher
    return publisher


async def record_view(app: FastAPI, user_id: int, image_id: int) -> None:
    """After the answer went out: a lost view is a lost line of history, never a failed request."""
    try:
        await _view_publisher(app).publish(user_id, image_id)
    except Exception as exc:
        log.warning("could not record a view", extra={"image_id": image_id, "error": str(exc)})


@router.get("/api/images", response_model=ImagePage, openapi_extra=list_parameters(IMAGES))
async def get_images(request: Request, pool: Pool, actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """Images you may see, newest first. Filters: `user`, `tag` (names or ids), `public`, `date`, `choice`,
    `like` (a user id), `q` (name and prompt); `sort=date-|date+|likes`. Commas are alternatives, repeats all
    apply. Paging: `page` and `page_size`, or the answer's `cursor` (docs/api.md "Lists")."""
    query = parse_list(request.query_params, IMAGES)
    return await list_images(pool, actor, query, request.app.state.blobs)


@router.get("/api/images/{image_id}", response_model=ImageOut)
async def get_image(image_id: ObjectId, request: Request, background: BackgroundTasks, pool: Pool,
                    actor: CurrentActor, _: Consistent) -> dict[str, Any]:
    """One image (404 when it does not exist or is another user's private image)."""
    row = await image_by_id(pool, actor, image_id)
    if row is None:
        raise NotFound(f"No image with id {image_id}.")
    if actor.user_id is not None:
        background.add_task(record_view, request.app, actor.user_id, image_id)
    return image_json(row, request.app.state.blobs)
