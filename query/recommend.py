"""What a ranked image list ranks by (query/ranked.py): the query vector of `similar=IMAGE_ID` and of the
recommendations, read from the images read model (docs/search.md).

- `similar=ID`: that image's own vector (404 when the caller may not see it); the image itself is left out.
  Not read here: `Ranking.similar` names the image and the search adapter reads its vector in the page's own
  snapshot (query/ranked.py; for Elasticsearch, `image_ranking` below).
- `sort=like`: the centroid of the caller's liked images (the latest MAX_SOURCES likes), equal weights.
- `sort=history`: the centroid of the caller's viewed images, each weighted by its view count times
  0.5 ** (age / half-life), so last week's views count for more than last year's.
- `sort=choice&choice=ID`: the centroid of a featured collection's items weighted by their `weight` (the
  collection must be visible to the caller, else 404); `choice` then names the source, it does not filter.
The images a recommendation starts from are ranked after it. With nothing to start from (no likes, an empty
history, items without embeddings yet) the list is in date order and `sort_applied` says `date-`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from infra.actor import Actor
from infra.authz import visible_sql
from infra.embeddings import query_vector, query_vector_sql
from infra.errors import Invalid, NotFound
from query.db import fetch_all, fetch_one
from query.ranked import Ranking

MAX_SOURCES = 200


def _floats(text: str) -> list[float]:
    return [float(v) for v in json.loads(text)]


def centroid(weighted: list[tuple[list[float], float]]) -> list[float] | None:
    total = sum(w for _, w in weighted if w > 0)
    if total <= 0:
        return None
    out = [0.0] * max(len(vector) for vector, _ in weighted)  # the read model's recipe's width
    for vector, weight in weighted:
        if weight > 0:
            for n, v in enumerate(vector):
                out[n] += v * weight / total
    return out


async def image_ranking(cur: AsyncCursor[dict[str, Any]], actor: Actor, ranking: Ranking) -> Ranking:
    """`Ranking.similar` with its image's query vector read from the read model, for an adapter whose index is
    not the read model (Elasticsearch): 404 when the caller may not see the image, date order while it has no
    vector. (The PostgreSQL adapter computes the vector inside its ranking statement: query/ranked.py.)"""
    assert ranking.of_image is not None
    visible, params = visible_sql(actor, "i.user_id", "i.public")
    await cur.execute(f"SELECT ({query_vector_sql('i.embedding', ranking.prompt_weight)})::text AS v"
                      f" FROM rm.images i WHERE i.id = %s AND {visible}", [ranking.of_image, *params])
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No image with id {ranking.of_image}.")
    if row["v"] is None:  # not embedded yet: nothing to compare with
        return Ranking(None, "date-", leave_out=ranking.of_image)
    return Ranking(_floats(row["v"]), "similar", leave_out=ranking.of_image)


async def _ranking(sources: list[dict[str, Any]], applied: str, prompt_weight: float) -> Ranking:
    after = tuple(int(r["id"]) for r in sources)
    mean = centroid([(_floats(r["v"]), float(r["w"])) for r in sources if r["v"] is not None])
    if mean is None:
        return Ranking(None, "date-", after=after)
    return Ranking(query_vector(mean, prompt_weight, 1 - prompt_weight), applied, after=after)


async def from_likes(pool: AsyncConnectionPool, actor: Actor, prompt_weight: float) -> Ranking:
    if actor.user_id is None:
        raise Invalid("sort=like recommends from your own likes: log in first.", field="query.sort")
    sources = await fetch_all(pool, "SELECT i.id, i.embedding::text AS v, 1.0 AS w FROM rm.image_likes l"
                              " JOIN rm.images i ON i.id = l.image_id WHERE l.user_id = %s"
                              " ORDER BY l.created_at DESC LIMIT %s", [actor.user_id, MAX_SOURCES])
    return await _ranking(sources, "like", prompt_weight)


async def from_history(pool: AsyncConnectionPool, actor: Actor, prompt_weight: float,
                       half_life_s: float) -> Ranking:
    if actor.user_id is None:
        raise Invalid("sort=history recommends from your own views: log in first.", field="query.sort")
    sources = await fetch_all(
        pool, "SELECT i.id, i.embedding::text AS v, v.views * power(0.5, greatest(extract(epoch FROM"
        " %s::timestamptz - v.viewed_at), 0) / %s) AS w FROM rm.image_views v JOIN rm.images i ON i.id = v.image_id"
        " WHERE v.user_id = %s ORDER BY v.viewed_at DESC LIMIT %s",
        [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), half_life_s, actor.user_id, MAX_SOURCES])
    return await _ranking(sources, "history", prompt_weight)


async def from_choice(pool: AsyncConnectionPool, actor: Actor, choice_id: int, prompt_weight: float) -> Ranking:
    visible, params = visible_sql(actor, "c.user_id", "c.public")
    found = await fetch_one(pool, f"SELECT 1 AS ok FROM rm.choices c WHERE c.id = %s AND {visible}",
                            [choice_id, *params])
    if found is None:
        raise NotFound(f"No featured collection with id {choice_id}.")
    sources = await fetch_all(pool, "SELECT i.id, i.embedding::text AS v, ci.weight AS w FROM rm.choice_items ci"
                              " JOIN rm.images i ON i.id = ci.image_id WHERE ci.choice_id = %s"
                              " ORDER BY ci.position LIMIT %s", [choice_id, MAX_SOURCES])
    return await _ranking(sources, "choice", prompt_weight)
