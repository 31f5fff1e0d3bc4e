"""A model's training data resolved for its train task (docs/training.md "The contract"): what the runner gets.

Resolved when the task is made, from the aggregates (never a read model, which may lag), with the OWNER's eyes:
- each image the model names must still exist and be one the owner may use (theirs, or public); a deleted image,
  or one now private to another user, refuses the whole request naming it;
- a featured collection must still exist and be visible to the owner; its images count as the collection shows
  them to the owner (deleted ones and others' private ones are left out, as its read model leaves them out);
- each image gives its blob key and a caption: its prompt, else the model's trigger words; an image named twice
  (directly and in a collection) counts once;
- `oss` URLs go to the runner as they are (it fetches them through infra/urls.check_fetch, every hop checked);
- fewer than MIN_ITEMS usable items (images, and URLs other than `.txt` caption companions) refuses the request
  before any GPU time is spent.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from command.app import CommandApp
from command.choices import Choice
from command.images import Image
from command.models import Model
from infra.actor import Actor
from infra.authz import can_see
from infra.errors import NotFound
from infra.training_params import MIN_ITEMS

MAX_IMAGES = 2000  # images one training may name, collections included (each is loaded from the log)


class TrainingRefused(Exception):
    """The request cannot become a task; `reason` is said to the owner (the model's `error`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _usable(app: CommandApp, owner: Actor, number: int) -> Image | None:
    try:
        image = app.load(Image, "image", number)
    except NotFound:
        return None
    return image if can_see(owner, image.user_id, image.public) else None


def _choice(app: CommandApp, owner: Actor, number: int) -> Choice:
    try:
        choice = app.load(Choice, "choice", number)
    except NotFound:
        choice = None
    if choice is None or not can_see(owner, choice.user_id, choice.public):
        raise TrainingRefused(f"Featured collection {number} in the model's data was deleted or is private to "
                              "another user: it cannot be trained on.")
    return choice


def _is_caption(url: str) -> bool:
    """A `.txt` companion: the caption of the image of the same name, not an item of its own."""
    return PurePosixPath(urlsplit(url).path).suffix.lower() == ".txt"


def resolve_dataset(app: CommandApp, model: Model) -> dict[str, Any]:
    """The task's `dataset`: {"images": [{image_id, blob_key, caption}], "oss": [urls], "repeats": n} (the data's
    repeat count where it has one, else 1)."""
    owner = Actor(user_id=model.user_id, role="user")
    images: dict[int, dict[str, Any]] = {}

    def add(number: int, image: Image) -> None:
        if number not in images:
            if len(images) >= MAX_IMAGES:
                raise TrainingRefused(f"The model's data names more than {MAX_IMAGES} images; one training takes "
                                      f"at most {MAX_IMAGES}.")
            images[number] = {"image_id": number, "blob_key": image.blob_key,
                              "caption": image.prompt.strip() or model.trigger_words}

    for number in model.data.get("images", []):
        image = _usable(app, owner, number)
        if image is None:
            raise TrainingRefused(f"Image {number} in the model's data was deleted or is private to another user: "
                                  "it cannot be trained on.")
        add(number, image)
    for number in model.data.get("choices", []):
        for item in _choice(app, owner, number).items:
            shown = _usable(app, owner, int(item["image_id"]))
            if shown is not None:
                add(int(item["image_id"]), shown)
    oss = list(model.data.get("oss", []))
    usable = len(images) + sum(1 for url in oss if not _is_caption(url))
    if usable < MIN_ITEMS:
        raise TrainingRefused(f"The model's data has {usable} usable item(s) (images and URLs); training needs at "
                              f"least {MIN_ITEMS}.")
    return {"images": list(images.values()), "oss": oss, "repeats": int(model.data.get("repeats", 1))}
