"""How image and like events change the rows of rm.images and rm.image_likes.

Deleted images are DELETE'd, with their likes and collection items. `likes` always equals the number of
image_likes rows of the image: a like is counted only when its row is really added (and uncounted only when
really removed), and a like of an image that is gone by the time it is projected adds nothing.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from events.images import IMAGE_FIELDS, ImageChanged, ImageDeleted, ImageUploaded
from events.likes import ImageLiked, ImageUnliked
from events.tags import TagDeleted
from projectors.postgres.ids import object_id

# The upload's fields (events/images.py), and what the projection adds.
IMAGE_COLUMNS = ("id", *IMAGE_FIELDS, "likes", "created_at", "updated_at", "version")

_INSERT = (f"INSERT INTO {{s}}.images ({', '.join(IMAGE_COLUMNS)})"
           f" VALUES ({', '.join(['%s'] * len(IMAGE_COLUMNS))})")


def _q(statement: str, s: str) -> str:
    return statement.replace("{s}", s)


def _stored(e: ImageUploaded, name: str) -> Any:
    value = getattr(e, name)
    if name == "loras":
        return Jsonb(value)
    return list(value) if name == "tag_ids" else value


async def image_uploaded(cur: Any, s: str, seq: int, e: ImageUploaded) -> None:
    await cur.execute(_q(_INSERT, s), (
        object_id(e), *(_stored(e, name) for name in IMAGE_FIELDS), 0, e.timestamp, e.timestamp, seq,
    ))


async def image_changed(cur: Any, s: str, seq: int, e: ImageChanged) -> None:
    await cur.execute(_q(
        "UPDATE {s}.images SET name = COALESCE(%s, name), tag_ids = COALESCE(%s::bigint[], tag_ids),"
        " public = COALESCE(%s, public), updated_at = %s, version = %s WHERE id = %s", s),
        (e.name, None if e.tag_ids is None else list(e.tag_ids), e.public, e.timestamp, seq, object_id(e)))


async def image_deleted(cur: Any, s: str, e: ImageDeleted) -> None:
    number = object_id(e)
    for table, column in (("images", "id"), ("image_likes", "image_id"), ("choice_items", "image_id")):
        await cur.execute(_q(f"DELETE FROM {{s}}.{table} WHERE {column} = %s", s), (number,))
    # Its views belong to the views read model, which removes them itself (projectors/postgres/views.py).


async def image_liked(cur: Any, s: str, e: ImageLiked) -> None:
    await cur.execute(_q(
        "WITH added AS (INSERT INTO {s}.image_likes (user_id, image_id, created_at)"
        " SELECT %s, id, %s FROM {s}.images WHERE id = %s ON CONFLICT DO NOTHING RETURNING image_id)"
        " UPDATE {s}.images SET likes = likes + 1 WHERE id IN (SELECT image_id FROM added)", s),
        (object_id(e), e.timestamp, e.image_id))


async def image_unliked(cur: Any, s: str, e: ImageUnliked) -> None:
    await cur.execute(_q(
        "WITH removed AS (DELETE FROM {s}.image_likes WHERE user_id = %s AND image_id = %s RETURNING image_id)"
        " UPDATE {s}.images SET likes = likes - 1 WHERE id IN (SELECT image_id FROM removed)", s),
        (object_id(e), e.image_id))


async def tag_deleted(cur: Any, s: str, e: TagDeleted) -> None:
    """A deleted tag leaves every image: its name already drops out of the join with rm.tags, and this keeps
    `tag=ID` and the per-tag counters (updated by the row trigger) from finding images by a tag that is gone."""
    tag = object_id(e)
    await cur.execute(_q("UPDATE {s}.images SET tag_ids = array_remove(tag_ids, %s::bigint)"
                         " WHERE tag_ids @> ARRAY[%s::bigint]", s), (tag, tag))
