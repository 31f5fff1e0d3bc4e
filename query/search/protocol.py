"""One interface for the image list queries: every filter, every sort, `q`, `similar=` and the recommendations,
with their totals (docs/search.md). An adapter answers which image ids a page holds, in order; the rows
themselves are read from rm.images by id (query/image_queries.py), whichever adapter found them.

Rankings (query/ranked.py's `Ranking`: the query vector, the image left out, the images ranked after) are made
from the PostgreSQL read model by query/recommend.py and handed to whichever adapter serves the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class ImageSearch(Protocol):
    async def page(self, query: ListQuery, actor: Actor, ranking: Ranking | None = None) -> SearchPage:
        """One page of the images `query` selects for `actor`, in `query.sort`, or ranked by `ranking`."""
        ...

    async def close(self) -> None:
        """Release what the adapter holds (its client); the read pool is the container's."""
        ...
