"""Images: the aggregate (its rules) and the command handlers for upload, change and delete.

The bytes are stored (content-addressed) before the event that names them is appended: see
command/image_upload.py for that order and docs/images.md for how unreferenced blobs are collected.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from command.aggregate import NumberedAggregate
from command.app import CommandApp, retry_on_conflict
from command.tag_refs import resolve_tags, retry_on_tag_race
from events.base import EventHandlers
from events.ids import aggregate_uuid, new_id
from events.images import ImageChanged, ImageDeleted, ImageEmbedded, ImageUploaded
from events.store.protocol import IdempotencyArg
from infra.actor import Actor
from infra.authz import can_see, check_can_change
from infra.errors import Invalid, NotFound

MAX_NAME = 200
MAX_PROMPT = 4000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tab and newline are fine in prompts


def clean_text(raw: str, field: str, limit: int) -> str:
    text = raw.strip()
    if field == "name" and not text:
        raise Invalid("A name cannot be empty.", field="body.name")
    if len(text) > limit:
        raise Invalid(f"{field} has at most {limit} characters.", field=f"body.{field}")
    if _CONTROL.search(text) or (field == "name" and ("\n" in text or "\t" in text)):
        raise Invalid(f"{field} cannot contain control characters.", field=f"body.{field}")
    return text


@dataclass(frozen=True)
class NewImage:
    """A checked picture and its description: everything an ImageUploaded carries except owner and tags."""

    name: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    blob_key: str
    thumbnail_key: str | None
    content_type: str
    public: bool
    descriptor: list[float] | None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    scheduler: str | None = None
    seed: int | None = None
    from_image: str | None = None
    model_id: int | None = None
    loras: list[Any] = field(default_factory=list)
    task_id: int | None = None


class Image(NumberedAggregate):
    def __init__(self, user_id: int, name: str, prompt: str, negative_prompt: str, width: int, height: int,
                 num_inference_steps: int | None, guidance_scale: float | None, scheduler: str | None,
                 seed: int | None, from_image: str | None, model_id: int | None, loras: list[Any],
                 blob_key: str, thumbnail_key: str | None, content_type: str, public: bool, tag_ids: list[int],
                 task_id: int | None, descriptor: list[float] | None) -> None:
        self.user_id = user_id
        self.name = name
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        self.width = width
        self.height = height
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.scheduler = scheduler
        self.seed = seed
        self.from_image = from_image
        self.model_id = model_id
        self.loras = loras
        self.blob_key = blob_key
        self.thumbnail_key = thumbnail_key
        self.content_type = content_type
        self.public = public
        self.tag_ids = tag_ids
        self.task_id = task_id
        self.descriptor = descriptor
        self.embedding_version = 0  # the last recorded (command/embedder.py records them); 0: none yet
        self.embedded_versions: set[int] = set()
        self.deleted = False

    def change(self, name: str | None, tag_ids: list[int] | None, public: bool | None) -> None:
        """Record only what really changes; nothing at all when nothing does."""
        name = None if name == self.name else name
        tag_ids = None if tag_ids == self.tag_ids else tag_ids
        public = None if public == self.public else public
        if name is not None or tag_ids is not None or public is not None:
            self.trigger_event(ImageChanged, name=name, tag_ids=tag_ids, public=public)

    def delete(self) -> None:
        self.trigger_event(ImageDeleted, blob_key=self.blob_key, thumbnail_key=self.thumbnail_key)

    def embed(self, version: int, prompt_vector: list[float] | None, image_vector: list[float] | None) -> None:
        """Record the embedding of recipe `version`; nothing when one of that recipe is recorded (recipes are
        told apart by their version, which is not an order: infra/embeddings.Recipe)."""
        if not self.deleted and version not in self.embedded_versions:
            self.trigger_event(ImageEmbedded, embedding_version=version, prompt_vector=prompt_vector,
                               image_vector=image_vector)

    def _image_changed(self, event: ImageChanged) -> None:
        if event.name is not None:
            self.name = event.name
        if event.tag_ids is not None:
            self.tag_ids = list(event.tag_ids)
        if event.public is not None:
            self.public = event.public

    def _image_deleted(self, event: ImageDeleted) -> None:
        self.deleted = True

    def _image_embedded(self, event: ImageEmbedded) -> None:
        self.embedding_version = event.embedding_version
        self.embedded_versions.add(event.embedding_version)

    WHEN: ClassVar[EventHandlers] = {ImageChanged: _image_changed, ImageDeleted: _image_deleted,
                                     ImageEmbedded: _image_embedded}


def load_visible_image(app: CommandApp, actor: Actor, number: int) -> Image:
    """The image if `actor` may see it; another user's private image is unknown (404), as on the query side."""
    image = app.load(Image, "image", number)
    if not can_see(actor, image.user_id, image.public):
        raise NotFound(f"No image with id {number}.")
    return image


def upload_image(app: CommandApp, actor: Actor, new: NewImage, tags: list[str],
                 idempotency_key: IdempotencyArg = None) -> tuple[Image, int]:
    assert actor.user_id is not None, "routes require a user"

    def attempt() -> tuple[Image, int]:
        tag_ids, new_tags, claims = resolve_tags(app, actor, tags)
        number = new_id()
        image = Image._create(ImageUploaded, id=aggregate_uuid("image", number), user_id=actor.user_id,
                              tag_ids=tag_ids, **asdict(new))
        seq = app.store(image, *new_tags, claims=claims, idempotency_key=idempotency_key)
        return image, seq

    return retry_on_tag_race(attempt)


def change_image(app: CommandApp, actor: Actor, number: int, name: str | None, tags: list[str] | None,
                 public: bool | None) -> tuple[Image, int]:
    if name is not None:
        name = clean_text(name, "name", MAX_NAME)

    def attempt() -> tuple[Image, int]:
        image = app.load(Image, "image", number)
        check_can_change(actor, image.user_id, image.public, "image")
        tag_ids, new_tags, claims = resolve_tags(app, actor, tags) if tags is not None else (None, [], [])
        image.change(name, tag_ids, public)
        return image, app.store(image, *new_tags, claims=claims)

    return retry_on_tag_race(attempt)


def delete_image(app: CommandApp, actor: Actor, number: int) -> int:
    def attempt() -> int:
        image = app.load(Image, "image", number)
        check_can_change(actor, image.user_id, image.public, "image")
        image.delete()
        return app.store(image)

    return retry_on_conflict(attempt)
