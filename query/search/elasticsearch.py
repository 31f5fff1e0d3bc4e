"""The Elasticsearch adapter of the image search: the index that projectors/search/images.py writes
(infra/search_index.py), queried with the official client. Not run on the development machines (no server can
be installed there): tests/contract/test_image_search.py runs it where AIDRAW_ELASTICSEARCH_URL is set.

Tag names, and the like and collection filters, are read from the PostgreSQL read model (they are not in the
index); the rankings come from there too (query/recommend.py). Totals are exact (`track_total_hits`). A page
past the index's result window (100,000 rows) needs the answer's `cursor` (search_after).
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from infra.actor import Actor
from infra.errors import Invalid, Unavailable
from query import id_sets
from query.engine import resolve_tags
from query.listing import Condition, Cursor, ListQuery
from query.ranked import Ranking
from query.recommend import image_ranking
from query.search.es_query import MAX_TERMS, SORTS, cursor_keys, filter_query, search_after
from query.search.protocol import SearchPage

WINDOW = 100_000


class ElasticsearchImageSearch:
    def __init__(self, client: Any, index: str, pool: AsyncConnectionPool, nearest: int = 1000) -> None:
        self.client, self.index, self.pool, self.nearest = client, index, pool, nearest

    async def close(self) -> None:
        await self.client.close()

    async def _prepare(self, query: ListQuery, actor: Actor, ranking: Ranking | None
                       ) -> tuple[tuple[Condition, ...], dict[int, list[int]], Ranking | None]:
        """Tag names -> ids and like=/choice= -> id lists, from PostgreSQL; () when nothing can match. A
        `similar=` ranking's vector too (404 first, whatever the filters)."""
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            if ranking is not None and ranking.of_image is not None:
                ranking = await image_ranking(cur, actor, ranking)
            conditions = await resolve_tags(cur, query.conditions)
            if conditions is None:
                return (), {-1: []}, ranking
            sets: dict[int, list[int]] = {}
            for position, found in (await id_sets.measure(cur, conditions, actor, MAX_TERMS)).items():
                if not found.small:
                    raise Unavailable(f"{conditions[position].param}= selects more than {MAX_TERMS} images: "
                                      "too many for the search index's id filter.")
                await cur.execute(found.sql, found.params)
                sets[position] = sorted({int(r["id"]) for r in await cur.fetchall()})
        return conditions, sets, ranking

    async def page(self, query: ListQuery, actor: Actor, ranking: Ranking | None = None,
                   columns: str | None = None) -> SearchPage:
        """`columns` is not used: the rows are the caller's to read by id (`rows` None)."""
        conditions, sets, ranking = await self._prepare(query, actor, ranking)
        if sets.get(-1) == []:
            return SearchPage([], 0, True, False, None, ranking.applied if ranking else query.sort)
        if ranking is None:
            return await self._sorted(query, actor, conditions, sets)
        return await self._ranked(query, actor, conditions, sets, ranking)

    async def _sorted(self, query: ListQuery, actor: Actor, conditions: tuple[Condition, ...],
                      sets: dict[int, list[int]]) -> SearchPage:
        size = query.page_size
        body: dict[str, Any] = {"query": filter_query(conditions, actor, sets), "sort": SORTS[query.sort],
                                "size": size + 1, "track_total_hits": True, "_source": False}
        if query.cursor is not None:
            body["search_after"] = search_after(query.sort, query.cursor.keys)
        elif query.offset + size + 1 > WINDOW:
            raise Invalid(f"Pages past row {WINDOW} are reached with the answer's cursor.", field="query.page")
        else:
            body["from"] = query.offset
        found = await self.client.search(index=self.index, **body)
        hits = found["hits"]["hits"]
        more, hits = len(hits) > size, hits[:size]
        cursor = None
        if more and hits:
            cursor = Cursor(page=query.page + 1, sort=query.sort, keys=cursor_keys(query.sort, hits[-1]["sort"]))
        return SearchPage([int(h["_id"]) for h in hits], int(found["hits"]["total"]["value"]), True, more,
                          cursor.encode() if cursor else None, query.sort)

    async def _ids(self, query: dict[str, Any], size: int, offset: int = 0) -> list[int]:
        if size <= 0:
            return []
        found = await self.client.search(index=self.index, query=query, sort=SORTS["date-"], size=size,
                                         from_=offset, _source=False)
        return [int(h["_id"]) for h in found["hits"]["hits"]]

    async def _ranked(self, query: ListQuery, actor: Actor, conditions: tuple[Condition, ...],
                      sets: dict[int, list[int]], ranking: Ranking) -> SearchPage:
        """The three runs of query/ranked.py: the nearest (kNN with the filters as pre-filter), then the images
        the recommendation started from, then the rest newest first."""
        leave_out = [ranking.leave_out] if ranking.leave_out is not None else []
        after = list(ranking.after)
        counted = await self.client.count(index=self.index, query=filter_query(conditions, actor, sets,
                                                                               exclude=leave_out))
        total = int(counted["count"])
        near: list[int] = []
        if ranking.vector is not None:
            found = await self.client.search(index=self.index, size=self.nearest, _source=False, knn={
                "field": "embedding", "query_vector": ranking.vector, "k": self.nearest,
                "num_candidates": min(10_000, max(2 * self.nearest, 100)),
                "filter": filter_query(conditions, actor, sets, exclude=leave_out + after)})
            near = [int(h["_id"]) for h in found["hits"]["hits"]]
        sources = await self._ids(filter_query(conditions, actor, sets, exclude=leave_out, only=after),
                                  len(after)) if after else []
        ranked = near + [n for n in sources if n not in set(near)]
        offset, size = query.offset, query.page_size
        ids = ranked[offset:offset + size]
        need = size - len(ids)
        rest = await self._ids(filter_query(conditions, actor, sets, exclude=leave_out + ranked), need + 1,
                               max(0, offset - len(ranked)))
        more = offset + size < len(ranked) or len(rest) > need
        return SearchPage(ids + rest[:need], total, True, more, None, ranking.applied)
