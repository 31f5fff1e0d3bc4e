"""GET /api/images and /api/images/{id}; a logged-in detail GET records a view (browsing history)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import QueryParams

from infra.auth import CurrentActor
from infra.errors import Invalid, NotFound
from infra.http import ObjectId
from infra.schemas_images import ImageOut, ImagePage
from infra.settings import Settings
from query import recommend
from query.collections import IMAGES
from query.consistency import Consistent
from query.db import Pool
from query.filters import InChoice, read_id
from query.image_queries import image_by_id, image_json, list_images
from query.list_docs import list_parameters
from query.listing import ListQuery, parse_list
from query.ranked import Ranking
from query.services import Blobs, QuerySide, Views

router = APIRouter(tags=["images"])


@router.get("/api/images", response_model=ImagePage, openapi_extra=list_parameters(IMAGES))
async def get_images(request: Request, pool: Pool, services: QuerySide, actor: CurrentActor, _: Consistent
                     ) -> dict[str, Any]:
    """Images you may see, newest first. Filters: `user`, `tag` (names or ids), `public`, `date`, `choice`,
    `like` (a user id), `q` (name and prompt); `sort=date-|date+|likes`, or recommended: `sort=like|history`
    (yours) and `sort=choice&choice=ID`; `similar=IMAGE_ID` ranks by likeness (docs/search.md). Commas are
    alternatives, repeats all apply. Paging: `page` and `page_size`, or the answer's `cursor` (docs/api.md "Lists")."""
    given = request.query_params
    similar = given.getlist("similar")
    query = parse_list(QueryParams([(k, v) for k, v in given.multi_items() if k != "similar"]), IMAGES)
    settings = services.settings
    query, ranking = await _ranking(pool, actor, query, similar, settings)
    return await list_images(pool, services.image_search, actor, query, services.blobs, ranking)


async def _ranking(pool: Any, actor: Any, query: ListQuery, similar: list[str],
                   settings: Settings) -> tuple[ListQuery, Ranking | None]:
    """similar= (sort is then ignored) or a recommendation sort: what to rank by (query/recommend.py)."""
    weight = settings.similar_prompt_weight
    if similar:
        if len(similar) > 1 or "," in similar[0]:
            raise Invalid("similar takes one image id, once.", field="query.similar")
        try:
            image_id = read_id(similar[0])
        except ValueError as exc:
            raise Invalid(f"similar: {exc}.", field="query.similar") from None
        return query, Ranking.similar(image_id, weight)  # the adapter reads its vector (or 404s)
    if query.sort == "like":
        return query, await recommend.from_likes(pool, actor, weight)
    if query.sort == "history":
        return query, await recommend.from_history(pool, actor, weight, settings.history_half_life_s)
    if query.sort == "choice":
        sources = [c for c in query.conditions if isinstance(c.filter, InChoice)]
        if len(sources) != 1 or len(sources[0].values) != 1:
            raise Invalid("sort=choice needs one choice=ID: the featured collection to recommend from.",
                          field="query.choice")
        others = tuple(c for c in query.conditions if c is not sources[0])
        return replace(query, conditions=others), await recommend.from_choice(pool, actor, sources[0].values[0],
                                                                               weight)
    return query, None


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
