"""Filters that select rows by a set of ids kept in another table: `like=USER` (rm.image_likes) and `choice=ID`
(rm.choice_items of a collection the caller may see).

Which plan is fast depends on the set's size, and PostgreSQL's estimates (per-user like counts vary from one to
tens of thousands) pick badly in the middle. Measured at one million images: walking the date index and probing
the set costs about 21 * images / set-size rows for a page; reading the set and looking its rows up by id costs
set-size lookups; both run ~5 us a row, so they cross near sqrt(21 * 10^6) = 4,600 ids (about 25 ms either way
there, less on both sides). So the engine counts the set first (an index-only count, stopped past SMALL_SET):
- a small set is read first and its rows fetched by primary key (`id = ANY(ARRAY(...))`);
- a large set stays a semi-join (the page walks the order's index), and the capped count is driven from the
  set (each id looked up once) instead of scanning the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncCursor

from infra.actor import Actor
from infra.authz import visible_sql
from query.filters import InChoice, LikedBy
from query.listing import Condition

SMALL_SET = 5_000


@dataclass(frozen=True)
class IdSet:
    """The ids one condition selects (a union over its values), as a query returning column `id`."""

    sql: str
    params: list[Any]
    small: bool

    def condition(self, a: str) -> str:
        if self.small:
            return f"{a}.id = ANY(ARRAY({self.sql}))"
        return f"{a}.id IN ({self.sql})"


def _set_sql(condition: Condition, actor: Actor) -> tuple[str, list[Any]] | None:
    match condition.filter:
        case LikedBy(likes):
            return f"SELECT l.image_id AS id FROM {likes} l WHERE l.user_id = ANY(%s)", [list(condition.values)]
        case InChoice(items, choices):
            seen, seen_params = visible_sql(actor, "c.user_id", "c.public")
            return (f"SELECT ci.image_id AS id FROM {items} ci JOIN {choices} c ON c.id = ci.choice_id"
                    f" WHERE ci.choice_id = ANY(%s) AND {seen}", [list(condition.values), *seen_params])
    return None


async def measure(cur: AsyncCursor[dict[str, Any]], conditions: tuple[Condition, ...], actor: Actor,
                  small_set: int = SMALL_SET) -> dict[int, IdSet]:
    """The id sets of these conditions, by position, each measured small (at most `small_set` ids) or large."""
    found = {}
    for position, condition in enumerate(conditions):
        made = _set_sql(condition, actor)
        if made is None:
            continue
        sql, params = made
        await cur.execute(f"SELECT count(*) AS n FROM ({sql} LIMIT %s) s", [*params, small_set + 1])
        row = await cur.fetchone()
        found[position] = IdSet(sql, params, small=bool(row and row["n"] <= small_set))
    return found


def driven_count_sql(driver: IdSet, table: str, a: str, where: str) -> str:
    """A capped count that reads the driver's ids and looks each row up once (`OFFSET 0` keeps PostgreSQL from
    turning the lookup back into a join that scans the table). Parameters: driver's, where's, the limit."""
    return (f"SELECT count(*) AS n FROM (SELECT 1 FROM (SELECT DISTINCT d.id FROM ({driver.sql}) d) s,"
            f" LATERAL (SELECT 1 FROM {table} {a} WHERE {a}.id = s.id AND {where} OFFSET 0) x LIMIT %s) capped")
