"""The one list-query parser: a `GET /api/{collection}` query string -> a validated `ListQuery`.

Each collection declares the parameters it accepts (query/collections.py). The rule of API.md: values separated
by commas are a union, a repeated parameter is an intersection, different parameters intersect. So a query is a
list of conditions that all hold, each a union of values of one filter. Unknown parameters and malformed values
answer 422 naming the parameter (`errors[].loc == ["query", name]`).

Paging: `page` from 1, `page_size` (also `pageSize`) 1..100, or `cursor` (the `cursor` of a previous answer:
a keyset position, constant cost however deep). `page`, `page_size`, `sort` and `cursor` may appear once each.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from starlette.datastructures import QueryParams

from infra.errors import Invalid
from query.filters import MAX_DIGITS, Filter

PAGE_SIZE_NAMES = ("page_size", "pageSize")
PAGING = {"page", *PAGE_SIZE_NAMES, "sort", "cursor"}
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 1_000_000
MAX_REPEATS = 20  # repetitions of one parameter
MAX_ALTERNATIVES = 100  # comma-separated values in one


@dataclass(frozen=True)
class Order:
    """A stable sort: the columns and directions, always ending with the unique `id`."""

    keys: tuple[tuple[str, bool], ...]  # (column, descending)

    @property
    def by_date(self) -> bool:
        return self.keys[0][0] == "created_at"


ORDERS: dict[str, Order] = {
    "date-": Order((("created_at", True), ("id", True))),
    "date+": Order((("created_at", False), ("id", False))),
    "likes": Order((("likes", True), ("created_at", True), ("id", True))),
}


@dataclass(frozen=True)
class Collection:
    """One collection's small table: what its list accepts and where its rows are."""

    name: str
    table: str  # the read-model table, e.g. "rm.images"
    params: Mapping[str, Filter]  # accepted parameter names (aliases too) -> their filter
    sorts: tuple[str, ...] = ("date-", "date+")
    visibility: Literal["public_or_own", "own", "everyone"] = "public_or_own"  # "own": the owner's; admin: all
    alias: str = "t"  # the table's name in the SQL, and in the columns a route selects
    scope: str = ""  # SQL over the alias that every listed row satisfies (e.g. not deleted); "" = all rows
    counters: str | None = None  # projected per-day counters (images: rm.image_counts; query/counted.py)
    public: str = ""  # SQL over the alias: everyone may see the row ("" = the row's own `public` column)


@dataclass(frozen=True)
class Condition:
    """Rows matching any of `values` of `filter` (one parameter occurrence; `param` as the client spelled it)."""

    param: str
    filter: Filter
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the sort keys of the last row of the previous page, and its page number."""

    page: int
    sort: str
    keys: tuple[Any, ...]

    def encode(self) -> str:
        keys = [k.isoformat() if isinstance(k, datetime) else k for k in self.keys]
        raw = json.dumps([self.page, self.sort, keys], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, sort: str) -> Cursor:
        try:
            page, made_for, keys = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            order = ORDERS[made_for]
            if made_for != sort or not isinstance(page, int) or not 1 < page <= MAX_PAGE + 1:
                raise ValueError
            if not isinstance(keys, list) or len(keys) != len(order.keys):
                raise ValueError
            typed = tuple(_key_value(column, value) for (column, _), value in zip(order.keys, keys, strict=True))
        except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
            raise Invalid("cursor is not one this list gave (cursors belong to one sort order).",
                          field="query.cursor") from None
        return cls(page=page, sort=sort, keys=typed)


def _key_value(column: str, value: Any) -> Any:
    if column == "created_at":
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError
        return parsed
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError
    return value


@dataclass(frozen=True)
class ListQuery:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    sort: str = "date-"
    conditions: tuple[Condition, ...] = ()
    cursor: Cursor | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def order(self) -> Order:
        return ORDERS[self.sort]


def _once(params: QueryParams, names: tuple[str, ...]) -> tuple[str, str] | None:
    """The one (name, value) given among `names`, None if none; 422 when given more than once."""
    found = [(name, value) for name in names for value in params.getlist(name)]
    if len(found) > 1:
        raise Invalid(f"{found[1][0]} may be given only once.", field=f"query.{found[1][0]}")
    return found[0] if found else None


def _number(name: str, raw: str, upper: int) -> int:
    """Plain ASCII digits: '+1' arrives as ' 1' and is refused like any other stray space."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_DIGITS or not 1 <= int(raw) <= upper:
        raise Invalid(f"{name} must be an integer from 1 to {upper}, in plain digits.", field=f"query.{name}")
    return int(raw)


def _conditions(params: QueryParams, collection: Collection) -> tuple[Condition, ...]:
    conditions = []
    for name, raw in params.multi_items():
        if name in PAGING:
            continue
        flt = collection.params[name]
        parts = raw.split(",")
        if len(parts) > MAX_ALTERNATIVES or len(params.getlist(name)) > MAX_REPEATS:
            raise Invalid(f"{name}: at most {MAX_ALTERNATIVES} values, given at most {MAX_REPEATS} times.",
                          field=f"query.{name}")
        try:
            if any(not part.strip() for part in parts):
                raise ValueError("an empty value")
            values = tuple(dict.fromkeys(flt.read(part) for part in parts))
        except ValueError as exc:
            raise Invalid(f"{name}: {exc}.", field=f"query.{name}") from None
        conditions.append(Condition(param=name, filter=flt, values=values))
    return tuple(conditions)


def parse_list(params: QueryParams, collection: Collection) -> ListQuery:
    """The validated list query of `collection`, or Invalid (422) naming the first bad parameter."""
    for name, value in params.multi_items():
        if "\ufffd" in name or "\ufffd" in value:  # Starlette decodes bytes that are not UTF-8 as U+FFFD
            raise Invalid(f"Query parameter {name!r} is not valid UTF-8: percent-encode the UTF-8 bytes of the text.",
                          field=f"query.{name}")
    unknown = sorted(set(params.keys()) - set(collection.params) - PAGING)
    if unknown:
        accepted = ", ".join(sorted({*collection.params, "page", "page_size", "sort", "cursor"}))
        raise Invalid(f"Unknown query parameter(s): {', '.join(unknown)}. {collection.name} accepts: {accepted}.",
                      field=f"query.{unknown[0]}")
    sort = "date-"
    if given := _once(params, ("sort",)):
        sort = given[1][:-1] + "+" if given[1].endswith(" ") else given[1]  # one trailing space: '+' unencoded
        if sort not in collection.sorts:
            raise Invalid(f"sort must be one of {', '.join(collection.sorts)}.", field="query.sort")
    page = 1
    if given := _once(params, ("page",)):
        page = _number("page", given[1], MAX_PAGE)
    page_size = DEFAULT_PAGE_SIZE
    if given := _once(params, PAGE_SIZE_NAMES):
        page_size = _number(given[0], given[1], MAX_PAGE_SIZE)
    cursor = None
    if given := _once(params, ("cursor",)):
        if "page" in params:
            raise Invalid("Give either page or cursor, not both.", field="query.cursor")
        cursor = Cursor.decode(given[1], sort)
        page = cursor.page
    return ListQuery(page=page, page_size=page_size, sort=sort, conditions=_conditions(params, collection),
                     cursor=cursor)

