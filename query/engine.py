"""The list engine: a collection's parsed `ListQuery` -> one page of what the caller may see.

All list SQL is built here: each filter's WHERE fragment, the visibility rule (infra/authz.py), the order, the
paging, and `total`. The answer is `{page, page_size, total, total_exact, next, cursor, list}`:

- `total` is exact when `total_exact` is true. It is exact from the projected counters for countable image
  queries (query/counted.py), and otherwise from a count capped at COUNT_CAP matching rows: past the cap,
  `total` is a lower bound (at least COUNT_CAP, and at least the rows up to this page) and `total_exact` false.
- `next` is always exact; `cursor` (when `next`) opens the next page at its keyset position, at the same cost
  however deep the list goes.
- Page N of a countable date-ordered image query is found from the counters (a few thousand counter rows, then
  at most one day's rows); any other page N reads the N-1 pages before it (OFFSET), which is why `cursor` exists.

Rows, counters and counts of one answer are read in one REPEATABLE READ snapshot, so they never disagree.
Like and collection filters pick their plan by the size of their id set (query/id_sets.py).
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from infra.actor import Actor
from infra.authz import visible_sql
from query import counted, id_sets
from query.filters import Contains, CreatedOn, Filter, Flag, LiveStatus, OneOf, OwnedBy, Tagged
from query.id_sets import IdSet
from query.listing import Collection, Condition, Cursor, ListQuery, Order

COUNT_CAP = 1_000
TAGS_TABLE = "rm.tags"

Fragment = tuple[str, list[Any]]


def _like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def condition_sql(flt: Filter, values: tuple[Any, ...], a: str) -> Fragment:
    """Rows of alias `a` matching any of `values` of `flt` (tag names already resolved to ids)."""
    match flt:
        case OwnedBy(column) | OneOf(column, _):
            return f"{a}.{column} = ANY(%s)", [list(values)]
        case Tagged(column):
            return f"{a}.{column} && %s::bigint[]", [list(values)]
        case Flag(column):
            if len(set(values)) == 2:
                return "true", []
            return (f"{a}.{column}" if values[0] else f"NOT {a}.{column}"), []
        case CreatedOn(column):
            alternatives, params = [], []
            for r in values:
                bounds = []
                if r.start is not None:
                    bounds.append(f"{a}.{column} >= %s")
                    params.append(r.start)
                if r.end is not None:
                    bounds.append(f"{a}.{column} < %s")
                    params.append(r.end)
                alternatives.append("(" + (" AND ".join(bounds) or "true") + ")")
            return " OR ".join(alternatives), params
        case Contains(columns):
            return (" OR ".join(f"{a}.{col} ILIKE %s" for _ in values for col in columns),
                    [_like_pattern(v) for v in values for _ in columns])
        case LiveStatus(draining, _, alive, busy) if alive is not None:
            ids = {"offline": alive, "draining": alive, "busy": busy & alive, "online": alive - busy}
            among = f"{a}.id = ANY(%s::bigint[])"  # an empty list too: typed, so PostgreSQL knows what it is
            shape = {"offline": f"NOT ({among})", "draining": f"({a}.{draining} AND {among})",
                     "busy": f"(NOT {a}.{draining} AND {among})", "online": f"(NOT {a}.{draining} AND {among})"}
            return " OR ".join(shape[v] for v in values), [sorted(ids[v]) for v in values]
    raise TypeError(f"no SQL for filter {flt!r} (id-set filters are query/id_sets.py's; a LiveStatus needs the"
                    " heartbeats joined in by its route)")


def visibility_sql(collection: Collection, actor: Actor) -> Fragment:
    if collection.visibility == "everyone":
        return "true", []
    public = ("false" if collection.visibility == "own"  # "own": nothing public
              else collection.public or f"{collection.alias}.public")
    clause, params = visible_sql(actor, f"{collection.alias}.user_id", public)
    return clause, list(params)


def where_sql(collection: Collection, conditions: tuple[Condition, ...], actor: Actor,
              sets: dict[int, IdSet], leave_out: int | None = None) -> Fragment:
    """Scope, visibility and every condition (but the one at `leave_out`), all of which must hold."""
    a = collection.alias
    clauses, params = [f"({collection.scope})"] if collection.scope else [], []
    fragments = [visibility_sql(collection, actor)]
    for position, c in enumerate(conditions):
        if position == leave_out:
            continue
        found = sets.get(position)
        fragments.append((found.condition(a), found.params) if found else condition_sql(c.filter, c.values, a))
    for clause, values in fragments:
        clauses.append(f"({clause})")
        params += values
    return " AND ".join(clauses), params


def order_sql(order: Order, a: str) -> str:
    return ", ".join(f"{a}.{column} {'DESC' if descending else 'ASC'}" for column, descending in order.keys)


def keyset_sql(order: Order, a: str, keys: tuple[Any, ...]) -> Fragment:
    """Rows after `keys` in `order` (every order here runs one way, so one row comparison says it)."""
    descending = {d for _, d in order.keys}
    assert len(descending) == 1, "mixed directions need an expanded comparison"
    columns = ", ".join(f"{a}.{column}" for column, _ in order.keys)
    marks = ", ".join(["%s"] * len(keys))
    return f"({columns}) {'<' if descending.pop() else '>'} ({marks})", list(keys)


async def resolve_tags(cur: AsyncCursor[dict[str, Any]], conditions: tuple[Condition, ...],
                       tags_table: str = TAGS_TABLE) -> tuple[Condition, ...] | None:
    """Tag names -> ids (ignoring case); an unknown name matches nothing. None when a tag condition is left with
    no tag at all: nothing can match."""
    names = sorted({v for c in conditions if isinstance(c.filter, Tagged) for v in c.values if isinstance(v, str)})
    ids: dict[str, int] = {}
    if names:
        await cur.execute(f"SELECT id, lower(name) AS name FROM {tags_table} WHERE lower(name) = ANY(%s)", [names])
        ids = {row["name"]: int(row["id"]) for row in await cur.fetchall()}
    resolved = []
    for c in conditions:
        if isinstance(c.filter, Tagged):
            values = tuple(dict.fromkeys(ids[v] if isinstance(v, str) else v
                                         for v in c.values if not isinstance(v, str) or v in ids))
            if not values:
                return None
            c = Condition(c.param, c.filter, values)
        resolved.append(c)
    return tuple(resolved)


def _answer(query: ListQuery, rows: list[dict[str, Any]], total: int, exact: bool, more: bool) -> dict[str, Any]:
    cursor = None
    if more and rows:
        keys = tuple(rows[-1][f"_key{n}"] for n in range(len(query.order.keys)))
        cursor = Cursor(page=query.page + 1, sort=query.sort, keys=keys).encode()
    for row in rows:
        for n in range(len(query.order.keys)):
            del row[f"_key{n}"]
    return {"page": query.page, "page_size": query.page_size, "total": total, "total_exact": exact,
            "next": more, "cursor": cursor, "list": rows}


async def list_page(pool: AsyncConnectionPool, collection: Collection, query: ListQuery, actor: Actor,
                    columns: str | None = None, column_params: tuple[Any, ...] = (),
                    count_cap: int = COUNT_CAP, small_set: int = id_sets.SMALL_SET) -> dict[str, Any]:
    """One page of `collection` for `actor`. `columns` is the route's select list over the collection's alias
    (default: every column), evaluated for the page's rows only. `count_cap` and `small_set` are the tuning
    limits above and in query/id_sets.py (tests vary them to reach every plan with few rows)."""
    async with pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        # One snapshot for rows and counts; and plans made for the actual values every time: a list's best plan
        # depends on them (a rare or a popular tag, a day or three years), and the connection's prepared
        # statements would otherwise settle on one generic plan after five executions.
        await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;"
                          " SET LOCAL plan_cache_mode = force_custom_plan")
        return await _page(cur, collection, query, actor, columns, column_params, count_cap, small_set)


async def _page(cur: AsyncCursor[dict[str, Any]], collection: Collection, query: ListQuery, actor: Actor,
                columns: str | None, column_params: tuple[Any, ...], count_cap: int,
                small_set: int) -> dict[str, Any]:
    conditions = await resolve_tags(cur, query.conditions)
    if conditions is None:
        return _answer(query, [], 0, True, False)
    a, size, offset = collection.alias, query.page_size, query.offset
    sets = await id_sets.measure(cur, conditions, actor, small_set)
    where, params = where_sql(collection, conditions, actor, sets)
    plan = counted.plan_counts(conditions, actor) if collection.counters else None
    rows_sql = _RowsSql(collection, query, columns or f"{a}.*", list(column_params), where, params)

    if plan is not None and collection.counters and query.order.by_date and query.cursor is None:
        found = await counted.window(cur, collection.counters, plan, query.order.keys[0][1], offset, size)
        if found.start is None:
            return _answer(query, [], found.total, True, False)
        rows_sql.within(found.start, found.end)
        rows = await rows_sql.fetch(cur, limit=size, offset=found.skip)
        return _answer(query, rows, found.total, True, offset + len(rows) < found.total)

    if query.cursor is not None:
        rows_sql.after(query.cursor.keys)
        offset = 0
    rows = await rows_sql.fetch(cur, limit=size + 1, offset=offset)
    more, rows = len(rows) > size, rows[:size]
    if plan is not None and collection.counters:
        return _answer(query, rows, await counted.count(cur, collection.counters, plan), True, more)
    seen = query.offset + len(rows) if rows else 0  # past the end, the rows skipped may not exist
    if not more and (rows or query.offset == 0):
        return _answer(query, rows, seen, True, more)  # this page is the last: everything was seen
    matched = await _capped_count(cur, collection, conditions, actor, sets, count_cap)
    if matched <= count_cap:
        return _answer(query, rows, matched, True, more)
    return _answer(query, rows, max(count_cap, seen + int(more)), False, more)


async def filter_total(cur: AsyncCursor[dict[str, Any]], collection: Collection, conditions: tuple[Condition, ...],
                       actor: Actor, sets: dict[int, IdSet], count_cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(total, exact) of what the conditions select for `actor`, whatever the order: exact from the counters
    where the query is countable, else a count capped at count_cap (past it, (count_cap, False): a lower bound)."""
    plan = counted.plan_counts(conditions, actor) if collection.counters else None
    if plan is not None and collection.counters:
        return await counted.count(cur, collection.counters, plan), True
    matched = await _capped_count(cur, collection, conditions, actor, sets, count_cap)
    return (matched, True) if matched <= count_cap else (count_cap, False)


async def _capped_count(cur: AsyncCursor[dict[str, Any]], collection: Collection, conditions: tuple[Condition, ...],
                        actor: Actor, sets: dict[int, IdSet], cap: int) -> int:
    """How many rows match, counting no further than cap + 1; driven from a large id set when that is the only
    kind of id set (a small one makes the plain count cheap: its rows are fetched by id)."""
    a = collection.alias
    driver = next((position for position, found in sets.items() if not found.small), None)
    if driver is not None and all(not found.small for found in sets.values()):
        rest, rest_params = where_sql(collection, conditions, actor, sets, leave_out=driver)
        await cur.execute(id_sets.driven_count_sql(sets[driver], collection.table, a, rest),
                          [*sets[driver].params, *rest_params, cap + 1])
    else:
        where, params = where_sql(collection, conditions, actor, sets)
        await cur.execute(f"SELECT count(*) AS n FROM (SELECT 1 FROM {collection.table} {a} WHERE {where}"
                          " LIMIT %s) capped", [*params, cap + 1])
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


class _RowsSql:
    """The page SELECT: filtered and ordered rows of the table, then the route's columns for those rows only."""

    def __init__(self, collection: Collection, query: ListQuery, columns: str, column_params: list[Any],
                 where: str, params: list[Any]) -> None:
        self.collection, self.query = collection, query
        self.columns, self.column_params = columns, column_params
        self.where, self.params = [where], list(params)

    def within(self, start: Any, end: Any) -> None:
        a = self.collection.alias
        self.where.append(f"{a}.created_at >= %s AND {a}.created_at < %s")
        self.params += [start, end]

    def after(self, keys: tuple[Any, ...]) -> None:
        clause, params = keyset_sql(self.query.order, self.collection.alias, keys)
        self.where.append(clause)
        self.params += params

    async def fetch(self, cur: AsyncCursor[dict[str, Any]], limit: int, offset: int) -> list[dict[str, Any]]:
        a, order = self.collection.alias, self.query.order
        keys = ", ".join(f"{a}.{column} AS _key{n}" for n, (column, _) in enumerate(order.keys))
        await cur.execute(
            f"SELECT {self.columns}, {keys} FROM (SELECT {a}.* FROM {self.collection.table} {a}"
            f" WHERE {' AND '.join(self.where)} ORDER BY {order_sql(order, a)} LIMIT %s OFFSET %s) {a}"
            f" ORDER BY {order_sql(order, a)}",
            [*self.column_params, *self.params, limit, offset],
        )
        return list(await cur.fetchall())
