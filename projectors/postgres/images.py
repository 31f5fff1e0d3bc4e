"""Read model of images, likes and featured collections (docs/read-models-images.md).

One projector for the four tables because their rows depend on each other in log order: a like or a collection
item of an image counts only while the image exists, and deleting an image removes its likes and items. Kept
together, a rebuild applies those dependencies in exactly the order the live copy did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from events.choices import ChoiceChanged, ChoiceCreated, ChoiceDeleted
from events.images import ImageChanged, ImageDeleted, ImageEmbedded, ImageUploaded
from events.likes import ImageLiked, ImageUnliked
from events.tags import TagDeleted
from infra.embeddings import PIXELS, Recipe, configured_recipe
from projectors.base import Projector
from projectors.postgres import choice_rows, image_rows
from projectors.postgres.image_indexes import IMAGE_COUNT_TABLES, IMAGE_INDEXES
from projectors.postgres.image_vectors import VECTOR_DDL, VECTOR_EXTENSION, VECTOR_INDEX, image_embedded, vector_columns


def ddl(recipe: Recipe) -> list[str]:
    return [images_table(recipe), *OTHER_DDL]


def images_table(recipe: Recipe) -> str:
    return (
        "CREATE TABLE IF NOT EXISTS {s}.images ("
        " id bigint PRIMARY KEY, user_id bigint NOT NULL, name text NOT NULL DEFAULT '',"
        " prompt text NOT NULL DEFAULT '', negative_prompt text NOT NULL DEFAULT '',"
        " width int NOT NULL, height int NOT NULL,"
        " num_inference_steps int, guidance_scale double precision, scheduler text, seed bigint,"
        " from_image text, model_id bigint, loras jsonb NOT NULL DEFAULT '[]',"
        " blob_key text NOT NULL, thumbnail_key text, content_type text NOT NULL,"
        " public boolean NOT NULL DEFAULT true, likes int NOT NULL DEFAULT 0,"
        " tag_ids bigint[] NOT NULL DEFAULT '{}',"
        " task_id bigint, descriptor real[], " + vector_columns(recipe) + ","
        " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, version bigint NOT NULL)")


OTHER_DDL = [
    "CREATE TABLE IF NOT EXISTS {s}.image_likes (user_id bigint NOT NULL, image_id bigint NOT NULL,"
    " created_at timestamptz NOT NULL, PRIMARY KEY (user_id, image_id))",
    "CREATE TABLE IF NOT EXISTS {s}.choices (id bigint PRIMARY KEY, user_id bigint NOT NULL, name text NOT NULL,"
    " public boolean NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
    " version bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {s}.choice_items (choice_id bigint NOT NULL, image_id bigint NOT NULL,"
    " weight double precision NOT NULL, position int NOT NULL DEFAULT 0, PRIMARY KEY (choice_id, image_id))",
    "CREATE INDEX IF NOT EXISTS images_created ON {s}.images (created_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS image_likes_image ON {s}.image_likes (image_id)",
    "CREATE INDEX IF NOT EXISTS choice_items_image ON {s}.choice_items (image_id)",
    # The blob reaper asks whether any image still uses a key.
    "CREATE INDEX IF NOT EXISTS images_blob_key ON {s}.images (blob_key)",
    "CREATE INDEX IF NOT EXISTS images_thumbnail_key ON {s}.images (thumbnail_key)",
    "CREATE INDEX IF NOT EXISTS choices_created ON {s}.choices (created_at DESC, id DESC)",
]

DDL = ddl(PIXELS)  # the tables as the default recipe makes them


class ImagesProjector(Projector):
    name = "images"
    tables = ("images", "image_likes", "choices", "choice_items", *IMAGE_COUNT_TABLES)
    collections = ("images", "choices")

    def __init__(self, recipe: Recipe | None = None) -> None:
        self._fixed = recipe  # None: the configured one (infra/embeddings.configured_recipe)
        self._recipe = recipe

    @property
    def recipe(self) -> Recipe:
        """The recipe whose vectors this read model holds: read from the settings when the tables are set up
        (ddl(), at every start of the projector, a migration or a rebuild)."""
        if self._recipe is None:
            self._recipe = self._fixed or configured_recipe()
        return self._recipe

    def ddl(self) -> Sequence[str]:
        self._recipe = self._fixed or configured_recipe()
        return [*VECTOR_EXTENSION, *ddl(self.recipe), *IMAGE_INDEXES, *VECTOR_DDL]

    def deferred_ddl(self) -> Sequence[str]:
        return VECTOR_INDEX

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, ImageUploaded):
            await image_rows.image_uploaded(cur, s, seq, event)
        elif isinstance(event, ImageChanged):
            await image_rows.image_changed(cur, s, seq, event)
        elif isinstance(event, ImageEmbedded):
            await image_embedded(cur, s, event, self.recipe)
        elif isinstance(event, ImageDeleted):
            await image_rows.image_deleted(cur, s, event)
        elif isinstance(event, ImageLiked):
            await image_rows.image_liked(cur, s, event)
        elif isinstance(event, ImageUnliked):
            await image_rows.image_unliked(cur, s, event)
        elif isinstance(event, ChoiceCreated):
            await choice_rows.choice_created(cur, s, seq, event)
        elif isinstance(event, ChoiceChanged):
            await choice_rows.choice_changed(cur, s, seq, event)
        elif isinstance(event, ChoiceDeleted):
            await choice_rows.choice_deleted(cur, s, event)
        elif isinstance(event, TagDeleted):
            await image_rows.tag_deleted(cur, s, event)

    def changed(self, event: Any) -> Iterable[tuple[str, int]]:
        # A like changes the liked image (its count). A deleted tag also leaves images, which are not announced:
        # the tag's own deletion is (by the tags projector).
        if isinstance(event, ImageLiked | ImageUnliked):
            return (("images", event.image_id),)
        return super().changed(event)
