"""The list query in Elasticsearch's query language: filters as term/range/wildcard clauses, the visibility
rule, sort orders and `search_after` keys. Pure functions (unit-tested without a server); the adapter that
sends them is query/search/elasticsearch.py, the index is infra/search_index.py.

Like and collection filters (`like=`, `choice=`) become id lists read from the PostgreSQL read model (the
likes and collection tables are not in the index); tag names are resolved to ids there too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from infra.actor import Actor
from query.filters import Contains, CreatedOn, Flag, InChoice, LikedBy, OneOf, OwnedBy, Tagged
from query.listing import Condition

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TERMS = 65_536  # Elasticsearch's default index.max_terms_count


def ns(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def from_ns(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value // 1000)


def _wildcard(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    return f"*{escaped}*"


def _any(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}


def condition_clause(condition: Condition, id_sets: dict[int, list[int]], position: int) -> dict[str, Any]:
    """One condition (a union of its values) as a filter clause; like=/choice= from their id lists."""
    values = list(condition.values)
    match condition.filter:
        case OwnedBy():
            return {"terms": {"user_id": values}}
        case OneOf(column, _):
            return {"terms": {column: values}}
        case Tagged():
            return {"terms": {"tag_ids": values}}
        case Flag():
            if len(set(values)) == 2:
                return {"match_all": {}}
            return {"term": {"public": bool(values[0])}}
        case CreatedOn():
            ranges = []
            for r in values:
                bounds = {}
                if r.start is not None:
                    bounds["gte"] = ns(r.start)
                if r.end is not None:
                    bounds["lt"] = ns(r.end)
                ranges.append({"range": {"created_ns": bounds}} if bounds else {"match_all": {}})
            return _any(ranges)
        case Contains(columns):
            return _any([{"wildcard": {f"{column}_raw": {"value": _wildcard(v), "case_insensitive": True}}}
                         for v in values for column in columns])
        case LikedBy() | InChoice():
            return {"terms": {"id": id_sets[position]}}
    raise TypeError(f"no Elasticsearch clause for {condition.filter!r}")


def visibility_clause(actor: Actor) -> dict[str, Any] | None:
    if actor.is_admin:
        return None
    if actor.user_id is None:
        return {"term": {"public": True}}
    return _any([{"term": {"public": True}}, {"term": {"user_id": actor.user_id}}])


def filter_query(conditions: tuple[Condition, ...], actor: Actor, id_sets: dict[int, list[int]],
                 exclude: list[int] | None = None, only: list[int] | None = None) -> dict[str, Any]:
    """Everything must hold: visibility, each condition; `exclude` ids left out, `only` ids kept."""
    clauses = [condition_clause(c, id_sets, n) for n, c in enumerate(conditions)]
    if (visible := visibility_clause(actor)) is not None:
        clauses.append(visible)
    if only is not None:
        clauses.append({"terms": {"id": only}})
    query: dict[str, Any] = {"filter": clauses}
    if exclude:
        query["must_not"] = [{"terms": {"id": exclude}}]
    return {"bool": query}


SORTS: dict[str, list[dict[str, str]]] = {
    "date-": [{"created_ns": "desc"}, {"id": "desc"}],
    "date+": [{"created_ns": "asc"}, {"id": "asc"}],
    "likes": [{"likes": "desc"}, {"created_ns": "desc"}, {"id": "desc"}],
}


def search_after(sort: str, keys: tuple[Any, ...]) -> list[Any]:
    """A list cursor's keys (query/listing.py: created_at as a datetime) as Elasticsearch sort values."""
    return [ns(k) if isinstance(k, datetime) else k for k in keys]


def cursor_keys(sort: str, values: list[Any]) -> tuple[Any, ...]:
    """A hit's sort values as a list cursor's keys."""
    columns = [next(iter(key)) for key in SORTS[sort]]
    return tuple(from_ns(int(v)) if column == "created_ns" else int(v) for column, v in zip(columns, values,
                                                                                              strict=True))
