"""Lists ranked by similarity: `similar=IMAGE_ID` and the recommendations (`sort=like|history|choice`), over
every list filter and the visibility rule (docs/search.md).

A ranked list is three runs, one after the other, each a part of what the filters select:
1. the nearest `nearest` images to the query vector (pgvector, inner product `<#>`: the combined score of
   infra/embeddings.py), best first, leaving out `after`;
2. the images of `after` (what the caller already liked, viewed or collected: ranked after, never removed),
   then 3. everything else, newest first (images without an embedding yet, and everything past the nearest).
So every filtered image appears exactly once, `total` is the filter's total (less the query image, which
`similar=` leaves out), and pages are stable for a given log position.

A page reads only as many of the nearest as it needs (offset + page size + 1, to know whether more follow),
unless it reaches past them: then all `nearest`, to know what follows in date order. Asking the index for more
than its search list (`hnsw.ef_search`) holds makes the iterative scan search the graph again: page 1 asking
for the 100 nearest under a filter that drops 10% cost 4 times the index work of asking for 21
(bench/similar_scale.py, docs/benchmarks.md). With the exact scan every length gives the same order; with the
index, the pages within its first search list (about ef_search x the filter's share) are cut from the same
list, and past it a longer list may order its tail slightly differently, so a page boundary there can, rarely,
repeat or skip an image.

Finding the nearest: with few matching images (an exact total at most EXACT_BELOW) an exact scan; otherwise the
HNSW index with pgvector 0.8's iterative scan (`relaxed_order`, re-sorted here), which keeps scanning the graph
until enough rows pass the filters; when even that finds fewer than it should (a very selective filter past
`hnsw.max_scan_tuples`), the exact scan again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from infra.actor import Actor
from infra.embeddings import vector_text
from query import id_sets
from query.engine import filter_total, resolve_tags, where_sql
from query.listing import Collection, ListQuery

EXACT_BELOW = 2_000
EF_SEARCH = 100


@dataclass(frozen=True)
class Ranking:
    """What to rank by: a query vector (None: nothing to rank by, date order), the image `similar=` leaves out,
    the ids ranked after the recommendations, and the `sort_applied` to report."""

    vector: list[float] | None
    applied: str
    leave_out: int | None = None
    after: tuple[int, ...] = field(default=())


async def ranked_page(pool: AsyncConnectionPool, collection: Collection, query: ListQuery, actor: Actor,
                      ranking: Ranking, nearest: int, columns: str) -> dict[str, Any]:
    async with pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
                          " SET LOCAL plan_cache_mode = force_custom_plan;"
                          " SET LOCAL hnsw.iterative_scan = relaxed_order;"
                          f" SET LOCAL hnsw.ef_search = {EF_SEARCH}")
        return await _page(cur, collection, query, actor, ranking, nearest, columns)


def _answer(query: ListQuery, rows: list[dict[str, Any]], total: int, exact: bool, more: bool,
            applied: str) -> dict[str, Any]:
    return {"page": query.page, "page_size": query.page_size, "total": total, "total_exact": exact,
            "next": more, "cursor": None, "list": rows, "sort_applied": applied}


async def _page(cur: AsyncCursor[dict[str, Any]], collection: Collection, query: ListQuery, actor: Actor,
                ranking: Ranking, nearest: int, columns: str) -> dict[str, Any]:
    a = collection.alias
    conditions = await resolve_tags(cur, query.conditions)
    if conditions is None:
        return _answer(query, [], 0, True, False, ranking.applied)
    sets = await id_sets.measure(cur, conditions, actor, id_sets.SMALL_SET)
    where, params = where_sql(collection, conditions, actor, sets)
    total, exact = await filter_total(cur, collection, conditions, actor, sets)
    if ranking.leave_out is not None:
        await cur.execute(f"SELECT 1 FROM {collection.table} {a} WHERE {a}.id = %s AND {where}",
                          [ranking.leave_out, *params])
        if exact and await cur.fetchone():
            total -= 1
        where, params = f"{where} AND {a}.id <> %s", [*params, ranking.leave_out]

    near: list[int] = []
    offset, size = query.offset, query.page_size
    # Only as many of the nearest as this page needs (see the module's docstring), unless the page reaches past
    # them: then all `nearest`, to know what follows in date order.
    limit = min(nearest, offset + size + 1)
    if ranking.vector is not None:
        near = await _nearest(cur, collection, where, params, ranking, limit, total if exact else None)
        if len(near) > offset + size:  # the page lies within the ranked run, and more follows
            return await _rows_answer(cur, collection, query, near[offset:offset + size], columns, total, exact,
                                      True, ranking.applied)
        if limit < nearest and len(near) == limit:
            near = await _nearest(cur, collection, where, params, ranking, nearest, total if exact else None)
    # Then the images the ranking started from (a small set, read by id), then the rest newest first, each in
    # date order. Two reads, not one ORDER BY over both: that sorted every filtered row (0.6 s at 100,000
    # images), where the rest alone walks the date index.
    sources: list[int] = []
    if ranking.after:
        await cur.execute(f"SELECT {a}.id FROM {collection.table} {a} WHERE {where} AND {a}.id = ANY(%s)"
                          f" AND NOT ({a}.id = ANY(%s)) ORDER BY {a}.created_at DESC, {a}.id DESC",
                          [*params, list(ranking.after), near])
        sources = [int(r["id"]) for r in await cur.fetchall()]
    ahead = [*near, *sources]
    page_ids = ahead[offset:offset + size]
    if offset + size < len(ahead):
        return await _rows_answer(cur, collection, query, page_ids, columns, total, exact, True, ranking.applied)
    need = size - len(page_ids)
    await cur.execute(
        f"SELECT {a}.id FROM {collection.table} {a} WHERE {where} AND NOT ({a}.id = ANY(%s))"
        f" ORDER BY {a}.created_at DESC, {a}.id DESC LIMIT %s OFFSET %s",
        [*params, ahead, need + 1, max(0, offset - len(ahead))])
    rest = [int(r["id"]) for r in await cur.fetchall()]
    page_ids += rest[:need]
    return await _rows_answer(cur, collection, query, page_ids, columns, total, exact, len(rest) > need,
                              ranking.applied)


async def _rows_answer(cur: AsyncCursor[dict[str, Any]], collection: Collection, query: ListQuery,
                       page_ids: list[int], columns: str, total: int, exact: bool, more: bool,
                       applied: str) -> dict[str, Any]:
    a = collection.alias
    rows: list[dict[str, Any]] = [{"id": n} for n in page_ids]  # the ids alone need no second read
    if page_ids and columns != f"{a}.id":
        await cur.execute(f"SELECT {columns} FROM {collection.table} {a} WHERE {a}.id = ANY(%s)", [page_ids])
        found = {int(r["id"]): r for r in await cur.fetchall()}
        rows = [found[n] for n in page_ids if n in found]
    if not exact:
        total = max(total, query.offset + len(rows) + int(more))
    return _answer(query, rows, total, exact, more, applied)


async def _nearest(cur: AsyncCursor[dict[str, Any]], collection: Collection, where: str, params: list[Any],
                   ranking: Ranking, nearest: int, total: int | None) -> list[int]:
    """The ids of the `nearest` best-scoring images the filters select (not in `after`), best first."""
    a = collection.alias
    assert ranking.vector is not None
    vector = vector_text(ranking.vector)
    expected = nearest if total is None else min(nearest, max(total - len(ranking.after), 0))

    async def scan(exact: bool) -> list[int]:
        # `+ 0` hides the distance from the planner's index matching: the exact scan sorts every filtered row.
        distance = f"({a}.embedding <#> %s::vector){' + 0' if exact else ''}"
        await cur.execute(
            f"WITH near AS MATERIALIZED (SELECT {a}.id, {distance} AS d FROM {collection.table} {a}"
            f" WHERE {where} AND {a}.embedding IS NOT NULL AND NOT ({a}.id = ANY(%s))"
            f" ORDER BY {distance} LIMIT %s) SELECT id FROM near ORDER BY d, id",
            [vector, *params, list(ranking.after), vector, nearest])
        return [int(r["id"]) for r in await cur.fetchall()]

    if total is not None and total <= EXACT_BELOW:
        return await scan(exact=True)
    found = await scan(exact=False)
    if len(found) < expected:
        return await scan(exact=True)
    return found
