"""Read model of browsing history: rm.image_views, one row per (user, image) with a count and the last time.

It follows the views stream (events/views.py), not the domain stream: its positions are that stream's
sequences, so the API does not wait on it for read-your-writes (it is not in aidraw.roles.PROJECTORS). The
views stream drops old messages, so its sequences have gaps where history expired: `contiguous = False`.

A view counts only while its image exists in the live rm.images (a view projected after the image's deletion
adds nothing). History is not rebuilt from the log (it expires), so reading the live table is fine here.

The read model removes a deleted image's views itself: `ViewsOfDeletedImages` follows the domain stream (its own
checkpoint) and deletes them on ImageDeleted. A view projected in the moment between that and the images
projector's own deletion stays as a row of an image that is gone; every read of history joins rm.images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.images import ImageDeleted
from events.views import ImageViewed, decode_view
from projectors.base import LIVE_SCHEMA, Projector
from projectors.postgres.ids import object_id


class ViewsProjector(Projector):
    name = "image_views"
    tables = ("image_views",)
    contiguous = False

    def ddl(self) -> Sequence[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {s}.image_views (user_id bigint NOT NULL, image_id bigint NOT NULL,"
            " viewed_at timestamptz NOT NULL, views int NOT NULL DEFAULT 1, PRIMARY KEY (user_id, image_id))",
            "CREATE INDEX IF NOT EXISTS image_views_recent ON {s}.image_views (user_id, viewed_at DESC)",
            "CREATE INDEX IF NOT EXISTS image_views_image ON {s}.image_views (image_id)",
        ]

    def decode(self, headers: dict[str, str] | None, data: bytes) -> Any | None:
        return decode_view(headers, data)

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if not isinstance(event, ImageViewed):
            return
        await cur.execute(self.sql(
            "INSERT INTO {s}.image_views (user_id, image_id, viewed_at, views)"
            f" SELECT %s, id, %s, 1 FROM {LIVE_SCHEMA}.images WHERE id = %s"
            " ON CONFLICT (user_id, image_id) DO UPDATE SET views = {s}.image_views.views + 1,"
            " viewed_at = GREATEST({s}.image_views.viewed_at, EXCLUDED.viewed_at)", s),
            (event.user_id, event.viewed_at, event.image_id))


class ViewsOfDeletedImages(Projector):
    """The views read model's second input: a deleted image's views go (domain stream, not rebuilt)."""

    name = "image_views_deleted"
    tables = ()

    def ddl(self) -> Sequence[str]:
        return ViewsProjector().ddl()

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, ImageDeleted):
            await cur.execute(self.sql("DELETE FROM {s}.image_views WHERE image_id = %s", s), (object_id(event),))
