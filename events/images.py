"""Images: uploaded (later also generated) pictures, their metadata and who may see them.

The picture itself is in the blob store under content-addressed keys; the events carry the keys, never bytes.
"""

from __future__ import annotations

from typing import Any

from events.base import Changed, Created, Deleted


class ImageUploaded(Created):
    """Everything an image starts with. Generation parameters are None for an upload; `descriptor` is the
    content descriptor computed from the pixels (infra/media.py), kept in the event so a rebuild never needs
    the blob."""

    user_id: int
    name: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    num_inference_steps: int | None
    guidance_scale: float | None
    scheduler: str | None
    seed: int | None
    from_image: str | None
    model_id: int | None
    loras: list[Any]
    blob_key: str
    thumbnail_key: str | None
    content_type: str
    public: bool
    tag_ids: list[int]
    task_id: int | None
    descriptor: list[float] | None


# The one definition of what describes an image: the upload's fields, above. The read model's columns, what a
# GET and a write's answer show (projectors/postgres/image_rows.py, query/image_queries.py,
# command/routes/images.py) are derived from it; the typed copies (command/images.py `NewImage` and `Image`,
# infra/schemas_images.py `ImageFields`, the read model's DDL) are checked against it
# (tests/unit/test_vocabularies.py).
IMAGE_FIELDS: tuple[str, ...] = tuple(ImageUploaded.__annotations__)
# Stored, never shown as they are: the blob keys become `url` and `thumbnail_url`, tag ids become `tags` (names).
UNSHOWN_FIELDS = frozenset({"blob_key", "thumbnail_key", "content_type", "tag_ids", "descriptor"})
# Shown to clients exactly as stored (beside `id`, `likes`, the URLs, `tags`, `user`, the dates).
SHOWN_FIELDS: tuple[str, ...] = tuple(name for name in IMAGE_FIELDS if name not in UNSHOWN_FIELDS)


class ImageChanged(Changed):
    """What the owner changed; a field that is None was left as it was."""

    name: str | None
    tag_ids: list[int] | None
    public: bool | None


class ImageDeleted(Deleted):
    """The image is gone. Its blob keys are named so the blob reaper can collect them without the read model
    of the image (which is deleted in the same step)."""

    blob_key: str
    thumbnail_key: str | None


class ImageEmbedded(Changed):
    """The image's embedding (infra/embeddings.py), computed once by the embedding worker (command/embedder.py)
    and recorded here so that projectors copy floats and never compute them: a rebuild gives identical rows.
    `embedding_version` names the recipe (model and descriptor); a newer recipe appends a newer event. A part
    is None when the image has nothing to compute it from (no prompt; no descriptor)."""

    embedding_version: int
    prompt_vector: list[float] | None
    image_vector: list[float] | None
