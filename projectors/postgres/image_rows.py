"""How image and like events change the rows of rm.images and rm.image_likes.

Deleted images are DELETE'd, with their likes and collection items. `likes` always equals the number of
image_likes rows of the image: a like is counted only when its row is really added (and uncounted only when
really removed), and a like of an image that is gone by the time it is projected adds nothing.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from events.images import ImageChanged, ImageDeleted, ImageUploaded
from events.likes import ImageLiked, ImageUnliked
from events.tags import TagDeleted
from projectors.postgres.ids import object_id

IMAGE_COLUMNS = (
    "id", "user_id", "name", "prompt", "negative_prompt", "width", "height", "num_inference_steps",
    "guidance_scale", "scheduler", "seed", "from_image", "model_id", "loras", "blob_key", "thumbnail_key",
    "content_type", "public", "likes", "tag_ids", "task_id", "descriptor", "created_at", "updated_at", "version",
)

_INSERT = (f"INSERT INTO {{s}}.images ({', '.join(IMAGE_COLUMNS)})"
           f" VALUES ({', '.join(['%s'] * len(IMAGE_COLUMNS))})")


def _q(statement: str, s: str) -> str:
    return statement.replace("{s}", s)


async def image_uploaded(cur: Any, s: str, seq: int, e: ImageUploaded) -> None:
    await cur.execute(_q(_INSERT, s), (
        object_id(e), e.user_id, e.name, e.prompt, e.negative_prompt, e.width, e.height, e.num_inference_steps,
        e.guidance_scale, e.scheduler, e.seed, e.from_image, e.model_id, Jsonb(e.loras), e.blob_key,
        e.thumbnail_key, e.content_type, e.public, 0, list(e.tag_ids), e.task_id, e.descriptor, e.timestamp,
        e.timestamp, seq,
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
