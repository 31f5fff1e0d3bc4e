"""One interface for the image list queries: every filter, every sort, `q`, `similar=` and the recommendations,
with their totals (docs/search.md). An adapter answers which image ids a page holds, in order; the rows
themselves come from rm.images: the PostgreSQL adapter reads a ranked page's rows in its own statements (one
snapshot, no further connection), otherwise query/image_queries.py reads them by id.

Rankings (query/ranked.py's `Ranking`: the query vector, the image left out, the images ranked after) are made
from the PostgreSQL read model by query/recommend.py and handed to whichever adapter serves the list; a
`similar=` ranking names its image instead (`Ranking.similar`), and the adapter reads that image's vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from infra.actor import Actor
from query.listing import ListQuery
from query.ranked import Ranking


@dataclass(frozen=True)
class SearchPage:
    ids: list[int]
    total: int
    total_exact: bool
    next: bool
    cursor: str | None
    sort_applied: str
    rows: list[dict[str, Any]] | None = None  # the page's rows with the `columns` asked for, when the adapter read them


@runtime_checkable
class ImageSearch(Protocol):
    async def page(self, query: ListQuery, actor: Actor, ranking: Ranking | None = None,
                   columns: str | None = None) -> SearchPage:
        """One page of the images `query` selects for `actor`, in `query.sort`, or ranked by `ranking`
        (`Ranking.similar`: 404 when the caller may not see the image). `columns` (a select list over rm.images
        as `i`, holding `i.id`): an adapter that reads the page from the read model may return those rows too,
        read in the same snapshot, in `rows`; else `rows` is None and the caller reads them by id."""
        ...

    async def close(self) -> None:
        """Release what the adapter holds (its client); the read pool is the container's."""
        ...
