"""Lists of params, datasets and models: the API.md filters as SQL, and one paged SELECT.

A straightforward, correct implementation (the optimised list engine replaces it behind the same routes).
Combination rule: values separated by commas are a union, a repeated parameter is an intersection, different
parameters intersect. Visibility (infra/authz.py) is always part of the WHERE, so `total` never counts what the
caller may not see.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool
from starlette.datastructures import QueryParams

from infra.actor import Actor
from infra.authz import visible_sql
from infra.errors import Invalid
from query.dates import parse_date_filter
from query.db import fetch_all
from query.listing import ListQuery

USER_FILTERS = ("user", "user_id")
COMMON_FILTERS = {"user", "user_id", "public", "date", "q"}
_BOOLS = {"true": True, "false": False}


@dataclass
class Where:
    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    @property
    def sql(self) -> str:
        return " AND ".join(f"({c})" for c in self.clauses) if self.clauses else "true"


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def common_where(query: ListQuery, raw: QueryParams, actor: Actor, text_columns: tuple[str, ...]) -> Where:
    """Visibility plus the filters every owned collection takes: user, public, date, q."""
    where = Where()
    clause, params = visible_sql(actor)
    where.add(clause, *params)
    for name in USER_FILTERS:
        for group in query.filters.get(name, []):
            if not all(v.isdigit() and 0 < int(v) < 2**63 for v in group):
                raise Invalid(f"{name} must be user ids.", field=f"query.{name}")
            where.add("user_id = ANY(%s)", [int(v) for v in group])
    for group in query.filters.get("public", []):
        if not all(v.lower() in _BOOLS for v in group):
            raise Invalid("public must be true or false.", field="query.public")
        where.add("public = ANY(%s)", [_BOOLS[v.lower()] for v in group])
    if "date" in query.filters:
        # From the raw parameters: the parser strips values, and a trailing space is the unencoded '+'.
        for ranges in parse_date_filter(raw.getlist("date")):
            alternatives = []
            for r in ranges:
                bounds = []
                if r.start is not None:
                    bounds.append("created_at >= %s")
                    where.params.append(r.start)
                if r.end is not None:
                    bounds.append("created_at < %s")
                    where.params.append(r.end)
                alternatives.append(" AND ".join(bounds))
            where.clauses.append(" OR ".join(f"({a})" for a in alternatives))
    for group in query.filters.get("q", []):
        alternatives = [f"{col} ILIKE %s" for _ in group for col in text_columns]
        where.add(" OR ".join(alternatives), *[_like(v) for v in group for _ in text_columns])
    return where


def add_tag_filter(where: Where, query: ListQuery, tags_table: str = "rm.tags") -> None:
    """`tag=` by id or name (names ignoring case). Both resolve through the tags read model, so an unknown
    or deleted tag matches nothing."""
    for group in query.filters.get("tag", []):
        ids = [int(v) for v in group if v.isdigit() and int(v) < 2**63]
        names = [v.lower() for v in group if not v.isdigit()]
        where.add(f"tag_ids && ARRAY(SELECT id FROM {tags_table} WHERE id = ANY(%s) OR lower(name) = ANY(%s))",
                  ids, names)


def add_choice_filter(where: Where, query: ListQuery, name: str, column: str, allowed: tuple[str, ...]) -> None:
    """A filter over a fixed set of values (compared ignoring case, stored as spelt in `allowed`)."""
    canonical = {value.lower(): value for value in allowed}
    for group in query.filters.get(name, []):
        unknown = [v for v in group if v.lower() not in canonical]
        if unknown:
            raise Invalid(f"{name} must be one of {', '.join(allowed)}; got {unknown[0]!r}.", field=f"query.{name}")
        where.add(f"{column} = ANY(%s)", [canonical[v.lower()] for v in group])


async def fetch_page(pool: AsyncConnectionPool, columns: str, source: str, where: Where, query: ListQuery,
                     column_params: tuple[Any, ...] = ()) -> dict[str, Any]:
    """One page of `SELECT columns FROM source WHERE where`, newest first by default, with the visible total.

    The total comes with the page (a window count); only an empty page past the end counts separately.
    `source` must expose `created_at` and `id` unambiguously for the ordering."""
    order = "created_at DESC, id DESC" if query.sort == "date-" else "created_at ASC, id ASC"
    rows = await fetch_all(
        pool,
        f"SELECT {columns}, count(*) OVER () AS total_rows FROM {source} WHERE {where.sql}"
        f" ORDER BY {order} LIMIT %s OFFSET %s",
        [*column_params, *where.params, query.page_size + 1, query.offset],
    )
    total = rows[0]["total_rows"] if rows else 0
    if not rows and query.page > 1:
        counted = await fetch_all(pool, f"SELECT count(*) AS n FROM {source} WHERE {where.sql}", where.params)
        total = counted[0]["n"]
    for row in rows:
        del row["total_rows"]
    return {"page": query.page, "page_size": query.page_size, "total": total,
            "next": len(rows) > query.page_size, "list": rows[: query.page_size]}
