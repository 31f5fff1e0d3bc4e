"""The PostgreSQL adapter of the image search: the list engine (query/engine.py) and the pgvector ranking
(query/ranked.py) over rm.images. A ranked page comes with its rows (the columns asked for), read in the
ranking's own snapshot on its one connection."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from infra.actor import Actor
from query.collections import IMAGES
from query.engine import list_page
from query.listing import ListQuery
from query.ranked import Ranking, ranked_page
from query.search.protocol import SearchPage

_ID = f"{IMAGES.alias}.id"


def _page(found: dict[str, Any], applied: str, with_rows: bool = False) -> SearchPage:
    return SearchPage(ids=[int(r["id"]) for r in found["list"]], total=found["total"],
                      total_exact=found["total_exact"], next=found["next"], cursor=found["cursor"],
                      sort_applied=found.get("sort_applied", applied), rows=found["list"] if with_rows else None)


class PostgresImageSearch:
    def __init__(self, pool: AsyncConnectionPool, nearest: int = 1000) -> None:
        self.pool, self.nearest = pool, nearest

    async def close(self) -> None:
        """Nothing of its own: the read pool is the container's."""

    async def page(self, query: ListQuery, actor: Actor, ranking: Ranking | None = None,
                   columns: str | None = None) -> SearchPage:
        if ranking is None:  # the ids; the caller reads the rows (the plain lists are not changed here yet)
            return _page(await list_page(self.pool, IMAGES, query, actor, columns=_ID), query.sort)
        return _page(await ranked_page(self.pool, IMAGES, query, actor, ranking, self.nearest, columns or _ID),
                     ranking.applied, with_rows=columns is not None)
