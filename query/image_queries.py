"""Reading images from rm.images: one image as a client sees it, and lists of images (through the list engine,
query/engine.py). Visibility comes from infra/authz.visible_sql everywhere, so details, lists and totals apply
one rule.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from events.images import SHOWN_FIELDS
from infra.actor import Actor
from infra.authz import visible_sql
from infra.storage import BlobStore
from query.db import fetch_all, fetch_one
from query.listing import ListQuery
from query.ranked import Ranking
from query.search.protocol import ImageSearch

# What a client sees (events/images.py SHOWN_FIELDS and the read model's own), the keys the URLs are made from,
# the tags' names and the owner's name.
_COLUMNS = (
    ", ".join(f"i.{name}" for name in ("id", *SHOWN_FIELDS, "likes", "created_at", "updated_at", "blob_key",
                                      "thumbnail_key")) + ","
    " ARRAY(SELECT t.name FROM unnest(i.tag_ids) WITH ORDINALITY AS x(id, n) JOIN rm.tags t ON t.id = x.id"
    " ORDER BY x.n) AS tags, {user_name} AS user_name"
)
_USER_NAME = "(SELECT u.name FROM rm.users u WHERE u.id = i.user_id AND u.deleted_at IS NULL)"


_SELECT = _COLUMNS.format(user_name=_USER_NAME)


def image_json(row: dict[str, Any], blobs: BlobStore) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("blob_key", "thumbnail_key", "user_name", "total")}
    out["url"] = blobs.url(row["blob_key"])
    out["thumbnail_url"] = blobs.url(row["thumbnail_key"]) if row["thumbnail_key"] else None
    out["user"] = {"id": row["user_id"], "name": row["user_name"]}
    return out


async def image_by_id(pool: AsyncConnectionPool, actor: Actor, image_id: int) -> dict[str, Any] | None:
    visible, params = visible_sql(actor, "i.user_id", "i.public")
    return await fetch_one(pool, f"SELECT {_SELECT} FROM rm.images i WHERE i.id = %s AND {visible}",
                           [image_id, *params])


async def list_images(pool: AsyncConnectionPool, search: ImageSearch, actor: Actor, query: ListQuery,
                      blobs: BlobStore, ranking: Ranking | None = None) -> dict[str, Any]:
    """A page of images: which ids, in which order and how many from `search` (query/search/), in `query.sort`
    or ranked by `ranking` (similar=, recommendations); the rows from rm.images (read by the adapter with the
    ids where it can: then the whole answer is one snapshot)."""
    found = await search.page(query, actor, ranking, columns=_SELECT)
    rows: list[dict[str, Any]] = found.rows or []
    if found.ids and found.rows is None:
        by_id = {int(r["id"]): r for r in await fetch_all(
            pool, f"SELECT {_SELECT} FROM rm.images i WHERE i.id = ANY(%s)", [found.ids])}
        rows = [by_id[n] for n in found.ids if n in by_id]  # an image deleted since the search is left out
    return {"page": query.page, "page_size": query.page_size, "total": found.total,
            "total_exact": found.total_exact, "next": found.next, "cursor": found.cursor,
            "sort_applied": found.sort_applied, "list": [image_json(r, blobs) for r in rows]}
