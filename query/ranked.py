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

Round trips, not the index, are most of a page's time on a busy machine, so a page is read on one connection in
pipeline mode: the settings go with the first statement, the query image's read (`similar=`: may the caller see
it, has it a vector, do the filters select it) with the total's, and the page's rows with the nearest ids (a CTE
joined back to the table for the page's positions). `similar=`'s query vector is computed in that statement
from the image's row (infra/embeddings.py `query_vector_sql`): no vector travels to Python and back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from infra.actor import Actor
from infra.embeddings import query_vector_sql, vector_text
from infra.errors import NotFound
from query import id_sets
from query.engine import filter_total, resolve_tags, visibility_sql, where_sql
from query.listing import Collection, ListQuery

EXACT_BELOW = 2_000
EF_SEARCH = 100
# The transaction and its settings, sent ahead of the first statement (pipeline mode).
BEGIN = ("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
         "SET LOCAL plan_cache_mode = force_custom_plan",
         "SET LOCAL hnsw.iterative_scan = relaxed_order",
         f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")

Row = dict[str, Any]


@dataclass(frozen=True)
class Ranking:
    """What to rank by: a query vector (None: nothing to rank by, date order), the image `similar=` leaves out,
    the ids ranked after the recommendations, and the `sort_applied` to report. `Ranking.similar(ID)` ranks by
    an image's own vector, which the adapter reads in the page's own snapshot (`of_image`; `vector` None)."""

    vector: list[float] | None
    applied: str
    leave_out: int | None = None
    after: tuple[int, ...] = field(default=())
    of_image: int | None = None
    prompt_weight: float = 0.5

    @classmethod
    def similar(cls, image_id: int, prompt_weight: float) -> Ranking:
        """`similar=IMAGE_ID`: 404 when the caller may not see the image, date order while it has no vector."""
        return cls(None, "similar", leave_out=image_id, of_image=image_id, prompt_weight=prompt_weight)


async def ranked_page(pool: AsyncConnectionPool, collection: Collection, query: ListQuery, actor: Actor,
                      ranking: Ranking, nearest: int, columns: str) -> dict[str, Any]:
    """One page, its total and the rows' `columns`, in one REPEATABLE READ snapshot on one connection."""
    async with pool.connection() as conn, _snapshot(conn) as cur:
        return await _page(conn, cur, collection, query, actor, ranking, nearest, columns)


@asynccontextmanager
async def _snapshot(conn: AsyncConnection[Any]) -> AsyncIterator[AsyncCursor[Row]]:
    """A read-only REPEATABLE READ transaction in pipeline mode: its BEGIN and settings go out with the first
    statement, its COMMIT with the pipeline's closing sync (psycopg's `transaction()` waits for its BEGIN, and
    syncs again before its COMMIT: two round trips more). After an error the transaction is rolled back; one
    the server raised leaves it failed, and the pool rolls that back when the connection comes home."""
    async with conn.pipeline(), conn.cursor(row_factory=dict_row) as cur:
        for statement in BEGIN:
            await cur.execute(statement, prepare=False)
        try:
            yield cur
        except BaseException:
            with contextlib.suppress(psycopg.Error):  # a pipeline the server's error aborted takes no more
                await cur.execute("ROLLBACK", prepare=False)
            raise
        await cur.execute("COMMIT", prepare=False)


def _answer(query: ListQuery, rows: list[Row], total: int, exact: bool, more: bool, applied: str) -> dict[str, Any]:
    return {"page": query.page, "page_size": query.page_size, "total": total, "total_exact": exact,
            "next": more, "cursor": None, "list": rows, "sort_applied": applied}


async def _origin(conn: AsyncConnection[Any], collection: Collection, actor: Actor, image_id: int, where: str,
                  params: list[Any]) -> AsyncCursor[Row]:
    """Send the read of the image `similar=` leaves out (whether the caller may see it, whether it has a vector,
    whether the filters select it); its answer comes back with the next statement's (pipeline mode)."""
    a = collection.alias
    visible, visible_params = visibility_sql(collection, actor)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {a}.embedding IS NULL AS unembedded, ({where}) AS selected FROM {collection.table}"
                      f" {a} WHERE {a}.id = %s AND ({visible})", [*params, image_id, *visible_params])
    return cur


async def _page(conn: AsyncConnection[Any], cur: AsyncCursor[Row], collection: Collection, query: ListQuery,
                actor: Actor, ranking: Ranking, nearest: int, columns: str) -> dict[str, Any]:
    a = collection.alias
    conditions = await resolve_tags(cur, query.conditions)
    sets = await id_sets.measure(cur, conditions, actor, id_sets.SMALL_SET) if conditions is not None else {}
    where, params = where_sql(collection, conditions, actor, sets) if conditions is not None else ("false", [])
    origin = None
    if ranking.leave_out is not None:
        origin = await _origin(conn, collection, actor, ranking.leave_out, where, params)
    total, exact = await filter_total(cur, collection, conditions, actor, sets) if conditions is not None \
        else (0, True)
    found = None
    if origin is not None:
        found = await origin.fetchone()
        await origin.close()
    applied, target = ranking.applied, _target(collection, ranking)
    if ranking.of_image is not None:
        if found is None:
            raise NotFound(f"No image with id {ranking.of_image}.")
        if found["unembedded"]:  # not embedded yet: nothing to compare with
            applied, target = "date-", None
    if conditions is None:
        return _answer(query, [], 0, True, False, applied)
    if ranking.leave_out is not None:
        if exact and found is not None and found["selected"]:
            total -= 1
        where, params = f"{where} AND {a}.id <> %s", [*params, ranking.leave_out]

    near: list[int] = []
    known: dict[int, Row] = {}
    offset, size = query.offset, query.page_size
    # Only as many of the nearest as this page needs (see the module's docstring), unless the page reaches past
    # them: then all `nearest`, to know what follows in date order.
    limit = min(nearest, offset + size + 1)
    if target is not None:
        scan = _Nearest(cur, collection, where, params, target, ranking.after, columns, (offset, offset + size))
        near, known = await scan.ids(limit, total if exact else None)
        if len(near) > offset + size:  # the page lies within the ranked run, and more follows
            return await _rows_answer(cur, collection, query, near[offset:offset + size], columns, total, exact,
                                      True, applied, known)
        if limit < nearest and len(near) == limit:
            near, known = await scan.ids(nearest, total if exact else None)
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
        return await _rows_answer(cur, collection, query, page_ids, columns, total, exact, True, applied, known)
    rest: list[int] = []
    need = size - len(page_ids)
    if not exact or len(ahead) < total:  # else every selected image is ranked already: no rest to read
        await cur.execute(
            f"SELECT {a}.id FROM {collection.table} {a} WHERE {where} AND NOT ({a}.id = ANY(%s))"
            f" ORDER BY {a}.created_at DESC, {a}.id DESC LIMIT %s OFFSET %s",
            [*params, ahead, need + 1, max(0, offset - len(ahead))])
        rest = [int(r["id"]) for r in await cur.fetchall()]
    page_ids += rest[:need]
    return await _rows_answer(cur, collection, query, page_ids, columns, total, exact, len(rest) > need, applied,
                              known)


async def _rows_answer(cur: AsyncCursor[Row], collection: Collection, query: ListQuery, page_ids: list[int],
                       columns: str, total: int, exact: bool, more: bool, applied: str,
                       known: dict[int, Row]) -> dict[str, Any]:
    """The page's rows: those the nearest scan read with its ids, the others (sources, the rest) by id."""
    a = collection.alias
    rows: list[Row] = [{"id": n} for n in page_ids]  # the ids alone need no second read
    missing = [n for n in page_ids if n not in known]
    if page_ids and columns != f"{a}.id":
        if missing:
            await cur.execute(f"SELECT {columns} FROM {collection.table} {a} WHERE {a}.id = ANY(%s)", [missing])
            known = known | {int(r["id"]): r for r in await cur.fetchall()}
        rows = [known[n] for n in page_ids if n in known]
    if not exact:
        total = max(total, query.offset + len(rows) + int(more))
    return _answer(query, rows, total, exact, more, applied)


def _target(collection: Collection, ranking: Ranking) -> tuple[str, list[Any]] | None:
    """The query vector as SQL and its parameters: the image's own vector computed in the statement that ranks
    by it (similar=), or the ranking's vector sent once as text; None: nothing to rank by."""
    if ranking.of_image is not None:
        a = f"{collection.alias}_q"
        return (f"(SELECT {query_vector_sql(f'{a}.embedding', ranking.prompt_weight)} FROM {collection.table} {a}"
                f" WHERE {a}.id = %s)", [ranking.of_image])
    if ranking.vector is not None:
        return "%s::vector", [vector_text(ranking.vector)]
    return None


@dataclass(frozen=True)
class _Nearest:
    """The scan for the nearest best-scoring images the filters select (not in `after`), best first; with the
    columns of those at positions window[0] < n <= window[1] read in the same statement (the page's rows)."""

    cur: AsyncCursor[Row]
    collection: Collection
    where: str
    params: list[Any]
    target: tuple[str, list[Any]]
    after: tuple[int, ...]
    columns: str
    window: tuple[int, int]

    async def ids(self, nearest: int, total: int | None) -> tuple[list[int], dict[int, Row]]:
        expected = nearest if total is None else min(nearest, max(total - len(self.after), 0))
        if total is not None and total <= EXACT_BELOW:
            return await self._scan(nearest, exact=True)
        found = await self._scan(nearest, exact=False)
        if len(found[0]) < expected:
            return await self._scan(nearest, exact=True)
        return found

    async def _scan(self, nearest: int, exact: bool) -> tuple[list[int], dict[int, Row]]:
        c, a = self.collection, self.collection.alias
        vector, vector_params = self.target
        # `+ 0` hides the distance from the planner's index matching: the exact scan sorts every filtered row.
        near = (f"WITH near AS MATERIALIZED (SELECT {a}.id, ({a}.embedding <#> {vector}){' + 0' if exact else ''}"
                f" AS d FROM {c.table} {a} WHERE {self.where} AND {a}.embedding IS NOT NULL"
                f" AND NOT ({a}.id = ANY(%s)) ORDER BY d LIMIT %s)")
        params = [*vector_params, *self.params, list(self.after), nearest]
        if self.columns == f"{a}.id":
            await self.cur.execute(f"{near} SELECT id FROM near ORDER BY d, id", params)
            return [int(r["id"]) for r in await self.cur.fetchall()], {}
        await self.cur.execute(
            f"{near}, ranked AS (SELECT id, d, row_number() OVER (ORDER BY d, id) AS n FROM near),"
            f" page AS MATERIALIZED (SELECT {self.columns}, r.n AS _n FROM ranked r JOIN {c.table} {a}"
            f" ON {a}.id = r.id WHERE r.n > %s AND r.n <= %s)"
            " SELECT r.id AS _near, p.* FROM ranked r LEFT JOIN page p ON p._n = r.n ORDER BY r.n",
            [*params, *self.window])
        ids: list[int] = []
        rows: dict[int, Row] = {}
        for row in await self.cur.fetchall():
            ids.append(int(row.pop("_near")))
            if row.pop("_n") is not None:
                rows[ids[-1]] = row
        return ids, rows
