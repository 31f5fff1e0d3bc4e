"""The one list-query parser: `GET /api/{collection}` query strings -> a validated `ListQuery`.

Every collection declares which filters it accepts; unknown parameters and malformed values answer 422 naming
the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import QueryParams

from infra.errors import Invalid

PAGING = {"page", "page_size", "pageSize"}
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class ListQuery:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    # filter name -> list of groups (repeated parameter = intersection), each a list of values (comma = union)
    filters: dict[str, list[list[str]]] = field(default_factory=dict)
    sort: str = "date-"

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def _positive(name: str, raw: str, upper: int) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= upper:
        raise Invalid(f"{name} must be an integer from 1 to {upper}.", field=f"query.{name}")
    return int(raw)


def parse_list_query(params: QueryParams, allowed: set[str], sorts: set[str] | None = None) -> ListQuery:
    sorts = sorts or {"date-", "date+"}
    unknown = sorted(set(params.keys()) - allowed - PAGING - {"sort"})
    if unknown:
        raise Invalid(f"Unknown query parameter(s): {', '.join(unknown)}.", field=f"query.{unknown[0]}")
    page = 1
    page_size = DEFAULT_PAGE_SIZE
    if "page" in params:
        page = _positive("page", params.getlist("page")[-1], MAX_PAGE)
    for alias in ("page_size", "pageSize"):
        if alias in params:
            page_size = _positive(alias, params.getlist(alias)[-1], MAX_PAGE_SIZE)
    sort = "date-"
    if "sort" in params:
        # An unencoded '+' arrives as a space.
        sort = params.getlist("sort")[-1].replace(" ", "+")
        if sort not in sorts:
            raise Invalid(f"sort must be one of {', '.join(sorted(sorts))}.", field="query.sort")
    filters: dict[str, list[list[str]]] = {}
    for name in allowed:
        groups = []
        for raw in params.getlist(name):
            values = [v.strip() for v in raw.split(",")]
            if not all(values):
                raise Invalid(f"{name} has an empty value.", field=f"query.{name}")
            groups.append(values)
        if groups:
            filters[name] = groups
    return ListQuery(page=page, page_size=page_size, filters=filters, sort=sort)
