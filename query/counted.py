"""Totals and deep pages of image lists from the projected per-day counters (projectors/postgres/image_indexes.py).

A query is *countable* when its conditions are ones the counters are kept by: at most one owner, at most one
tag (each a single value, possibly repeated), `public`, and any `date` filter (date filters select whole UTC
days, the counters' unit). Its visible rows are then the sum of at most two counter series: the public rows of
the (owner, tag) key, and the private rows the caller may see (an admin: all of them; a user: their own).

From the per-day sums, `total` is exact and costs a few thousand counter rows at most, and page N of a date
order is found without reading the N-1 pages before it: the days before the page are skipped by their counts,
and only the rows of the page's first day that precede it are read (bounded by the busiest day, not by N).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from psycopg import AsyncCursor

from infra.actor import Actor
from query.dates import DayRange
from query.filters import CreatedOn, Flag, OwnedBy, Tagged
from query.listing import Condition


@dataclass(frozen=True)
class Series:
    """One counter key: user_id 0 = every owner, tag_id 0 = with or without tags."""

    user_id: int
    tag_id: int
    public: bool


@dataclass(frozen=True)
class CountPlan:
    series: tuple[Series, ...]
    days: tuple[tuple[DayRange, ...], ...]  # every condition holds; each is a union of ranges


@dataclass(frozen=True)
class Window:
    """Where a page lies: its rows are created within [start, end), after skipping `skip` of them."""

    total: int
    start: datetime | None
    end: datetime | None
    skip: int


def _one_value(conditions: list[Condition]) -> tuple[bool, int | None]:
    """(countable, the value): countable when every condition names one value, the same one (or none exist)."""
    values = {v for c in conditions for v in c.values}
    if any(len(c.values) != 1 for c in conditions) or len(values) > 1:
        return False, None
    return True, next(iter(values), None)


def plan_counts(conditions: tuple[Condition, ...], actor: Actor) -> CountPlan | None:
    """How to count these (tag-resolved) conditions from the counters, or None when they cannot be."""
    by_kind: dict[type, list[Condition]] = {}
    for condition in conditions:
        by_kind.setdefault(type(condition.filter), []).append(condition)
    if set(by_kind) - {OwnedBy, Tagged, Flag, CreatedOn}:
        return None
    (owner_ok, owner), (tag_ok, tag) = _one_value(by_kind.get(OwnedBy, [])), _one_value(by_kind.get(Tagged, []))
    if not (owner_ok and tag_ok):
        return None
    publics = {True, False}
    for condition in by_kind.get(Flag, []):
        publics &= set(condition.values)
    user_key, tag_key = int(owner or 0), int(tag or 0)
    series = []
    if True in publics:
        series.append(Series(user_key, tag_key, True))
    if False in publics:
        if actor.is_admin:
            series.append(Series(user_key, tag_key, False))
        elif actor.user_id is not None and owner in (None, actor.user_id):
            series.append(Series(actor.user_id, tag_key, False))
    return CountPlan(tuple(series), tuple(tuple(c.values) for c in by_kind.get(CreatedOn, [])))


def _days_sql(plan: CountPlan, table: str) -> tuple[str, list[Any]]:
    keys: list[str] = []
    params: list[Any] = []
    for s in plan.series:
        keys.append("(user_id = %s AND tag_id = %s AND public = %s)")
        params += [s.user_id, s.tag_id, s.public]
    where = ["(" + " OR ".join(keys) + ")"]
    for ranges in plan.days:
        alternatives = []
        for r in ranges:
            bounds = []
            if r.first is not None:
                bounds.append("day >= %s")
                params.append(r.first)
            if r.last is not None:
                bounds.append("day <= %s")
                params.append(r.last)
            alternatives.append("(" + " AND ".join(bounds) + ")")
        where.append("(" + " OR ".join(alternatives) + ")")
    return f"SELECT day, sum(n) AS n FROM {table} WHERE {' AND '.join(where)} GROUP BY day", params


async def count(cur: AsyncCursor[dict[str, Any]], table: str, plan: CountPlan) -> int:
    if not plan.series:
        return 0
    days, params = _days_sql(plan, table)
    await cur.execute(f"SELECT coalesce(sum(n), 0) AS total FROM ({days}) d", params)
    row = await cur.fetchone()
    assert row is not None
    return int(row["total"])


async def window(cur: AsyncCursor[dict[str, Any]], table: str, plan: CountPlan, newest_first: bool, offset: int,
                 size: int) -> Window:
    """The total, and the days holding rows offset..offset+size-1 of the date order."""
    if not plan.series:
        return Window(0, None, None, 0)
    days, params = _days_sql(plan, table)
    direction = "DESC" if newest_first else "ASC"
    await cur.execute(
        f"WITH days AS ({days}),"
        f" placed AS (SELECT day, n, sum(n) OVER (ORDER BY day {direction}) - n AS before FROM days)"
        " SELECT (SELECT coalesce(sum(n), 0) FROM days) AS total, min(day) AS first_day, max(day) AS last_day,"
        " min(before) AS before FROM placed WHERE before < %s AND before + n > %s",
        [*params, offset + size, offset],
    )
    row = await cur.fetchone()
    assert row is not None
    total, first_day, last_day = int(row["total"]), row["first_day"], row["last_day"]
    if first_day is None:
        return Window(total, None, None, 0)
    return Window(total, _midnight(first_day), _midnight(last_day + timedelta(days=1)), offset - int(row["before"]))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)

