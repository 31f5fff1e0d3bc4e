"""A generation request -> a waiting task (docs/tasks.md "The request").

The input model (infra/schemas_tasks.py) has checked each field's type and range; here come the checks that
need the configuration or other objects, each loaded from the log as an aggregate (never a read model, which may
lag): the size against the configured bounds, the source image, the base model and the LoRAs the caller may use
(command/generation_models.py, which also resolves them into what the runner needs).
Then the seed is drawn when the client sent none (-1), the images' name and tags are settled, and the task is
appended together with the owner's `UserTasks` entry (the per-user cap) in one atomic write.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from eventsourcing.application import AggregateNotFoundError

from command.app import CommandApp
from command.generation_models import resolve_models
from command.images import MAX_NAME, MAX_PROMPT, Image, clean_text
from command.tag_refs import clean_tag_names, resolve_tags, retry_on_tag_race
from command.tasks import Task, user_tasks
from events.ids import aggregate_uuid, new_id
from events.store.protocol import IdempotencyArg
from events.tasks import TaskCreated
from infra.actor import Actor
from infra.authz import can_see
from infra.errors import Invalid
from infra.schemas_tasks import MAX_SEED, GenerationIn
from infra.settings import Settings
from infra.storage import BlobStore, content_type_of, validate_key

MIN_SIDE = 64  # smaller than one latent block of 8x8 is no picture
DEFAULT_STRENGTH = 0.75  # img2img without `strength`: A1111's default denoising strength
OWN_BLOBS = "/api/blobs/"
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
WAITING_REASON = "queued: waiting for a runner"


@dataclass(frozen=True)
class Source:
    """The img2img source as recorded: what the client sent, and the blob the runner reads."""

    given: int | str
    blob_key: str


def check_size(settings: Settings, width: int, height: int) -> None:
    for field, side in (("width", width), ("height", height)):
        if not MIN_SIDE <= side <= settings.generation_max_side:
            raise Invalid(f"{field} must be from {MIN_SIDE} to {settings.generation_max_side} (a multiple of 8).",
                          field=f"body.{field}")
    if width * height > settings.generation_max_pixels:
        raise Invalid(f"width x height = {width * height} pixels is over this service's budget of "
                      f"{settings.generation_max_pixels}; make the image smaller.", field="body.width")


def _source_from_url(url: str, blobs: BlobStore) -> Source:
    """`/api/blobs/<key>` (with or without this service's origin), or exactly the URL the blob store gives."""
    problem = f"from_image {url[:100]!r} is neither an image id nor a URL of this service's blobs (/api/blobs/<key>)."
    try:
        path = urlsplit(url).path
    except ValueError:
        raise Invalid(problem, field="body.from_image") from None
    key = path[len(OWN_BLOBS):] if path.startswith(OWN_BLOBS) else "/".join(path.split("/")[-3:])
    try:
        validate_key(key)
    except ValueError:
        raise Invalid(problem, field="body.from_image") from None
    if not path.startswith(OWN_BLOBS) and blobs.url(key) != url:
        raise Invalid(problem, field="body.from_image")
    if content_type_of(key) not in IMAGE_TYPES or not blobs.exists(key):
        raise Invalid(f"from_image {url[:100]!r} names no stored image of this service.", field="body.from_image")
    return Source(url, key)


def _source_image(app: CommandApp, actor: Actor, given: int | str, blobs: BlobStore) -> Source:
    if isinstance(given, str):
        return _source_from_url(given, blobs)
    try:
        image: Any = app.repository.get(aggregate_uuid("image", given))
    except AggregateNotFoundError:
        image = None
    if not isinstance(image, Image) or image.deleted or not can_see(actor, image.user_id, image.public):
        raise Invalid(f"There is no image {given} that you can see.", field="body.from_image")
    return Source(given, image.blob_key)


def recipe(body: GenerationIn, seed: int, source: Source | None, models: dict[str, Any]) -> dict[str, Any]:
    """The task's `data`: everything the runner needs and the images will carry (`models`: what
    command/generation_models.py resolved: `capability`, `checkpoint_key`, `adapters`)."""
    return {
        "prompt": body.prompt, "negative_prompt": body.negative_prompt,
        "num_inference_steps": body.num_inference_steps, "guidance_scale": body.guidance_scale,
        "scheduler": body.scheduler, "seed": seed, "width": body.width, "height": body.height,
        "batch_size": body.batch_size, "model_id": body.model_id,
        "loras": [{"model_id": ref.model_id, "weight": ref.weight} for ref in body.loras],
        "from_image": source.given if source else None, "source_key": source.blob_key if source else None,
        "strength": (DEFAULT_STRENGTH if body.strength is None else body.strength) if source else None,
        **models,
    }


def request_generation(app: CommandApp, actor: Actor, body: GenerationIn, blobs: BlobStore,
                       idempotency_key: IdempotencyArg = None) -> tuple[Task, int]:
    """Check everything, then append the task (waiting) and the owner's unfinished-task entry as one write."""
    owner = actor.user_id
    assert owner is not None, "routes require a logged-in user"
    settings = app.settings
    prompt = clean_text(body.prompt, "prompt", MAX_PROMPT)
    if not prompt:
        raise Invalid("prompt cannot be empty.", field="body.prompt")
    clean_text(body.negative_prompt, "negative_prompt", MAX_PROMPT)
    name = clean_text(body.name, "name", MAX_NAME) if body.name is not None else " ".join(prompt.split())[:80]
    check_size(settings, body.width, body.height)
    if body.strength is not None and body.from_image is None:
        raise Invalid("strength applies to img2img only: send from_image with it, or leave it out.",
                      field="body.strength")
    tags = clean_tag_names(body.tags)
    source = _source_image(app, actor, body.from_image, blobs) if body.from_image is not None else None
    models = resolve_models(app, actor, body)
    seed = secrets.randbelow(MAX_SEED + 1) if body.seed == -1 else body.seed
    data = recipe(body.model_copy(update={"prompt": prompt}), seed, source, models)

    def attempt() -> tuple[Task, int]:
        tag_ids, new_tags, claims = resolve_tags(app, actor, tags)
        number = new_id()
        task = Task._create(TaskCreated, id=aggregate_uuid("task", number), user_id=owner,
                            type="inference", name=name, data=data, tag_ids=tag_ids, public=body.public)
        task.queue(WAITING_REASON)
        mine = user_tasks(app, owner)
        mine.add(number, settings.task_max_unfinished)
        return task, app.store(task, mine, *new_tags, claims=claims, idempotency_key=idempotency_key)

    return retry_on_tag_race(attempt)
