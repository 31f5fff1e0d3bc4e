"""Models: the aggregate (its rules) and the command handlers.

The training lifecycle (`ready` -> `waiting` -> `running` -> `success`/`error`) is a later issue. The aggregate
already keeps `status`, `progress` and `model_path`, and every change goes through `check_unlocked`, so adding the
lifecycle means adding its events and handlers here, not reworking the rules.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from command.app import CommandApp
from command.items import check_items, check_visible
from command.owned import OwnedAggregate, clean_name, owner_view, storable
from command.tag_refs import resolve_tags, retry_on_tag_race
from command.tags import Tag
from events.base import EventHandlers
from events.ids import aggregate_uuid, new_id
from events.models import (
    ModelArtefactStored,
    ModelCoverChosen,
    ModelCreated,
    ModelDeleted,
    ModelRenamed,
    ModelStatus,
    ModelTagsChanged,
    ModelTriggerWordsChanged,
    ModelVisibilityChanged,
)
from events.store.protocol import Claim, IdempotencyArg
from infra.actor import Actor
from infra.errors import Conflict, Invalid

INITIAL: ModelStatus = "initial"
LOCKED: frozenset[ModelStatus] = frozenset({"waiting", "running"})  # training queued or running: no changes
READ_ONLY = ("progress", "model_path")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tabs and newlines are fine in trigger words


class Model(OwnedAggregate):
    what = "model"

    def __init__(self, name: str, type: str, base_model: str, source: int | None, trigger_words: str,
                 tag_ids: list[int], public: bool, user_id: int, data: dict[str, Any], status: str) -> None:
        self.name = name
        self.type = type
        self.base_model = base_model
        self.source = source
        self.trigger_words = trigger_words
        self.tag_ids = tag_ids
        self.public = public
        self.user_id = user_id
        self.data = data
        self.status = status
        self.progress = 0
        self.model_path: str | None = None
        self.image_id: int | None = None
        self.deleted = False

    @property
    def locked(self) -> bool:
        return self.status in LOCKED

    def check_unlocked(self) -> None:
        if self.locked:
            raise Conflict(f"The model is {self.status} (training); it cannot be changed or deleted until "
                           "training ends or is canceled.")

    def rename(self, name: str) -> None:
        if name != self.name:
            self.trigger_event(ModelRenamed, name=name)

    def change_trigger_words(self, trigger_words: str) -> None:
        if trigger_words != self.trigger_words:
            self.trigger_event(ModelTriggerWordsChanged, trigger_words=trigger_words)

    def retag(self, tag_ids: list[int]) -> None:
        if tag_ids != self.tag_ids:
            self.trigger_event(ModelTagsChanged, tag_ids=tag_ids)

    def set_public(self, public: bool) -> None:
        if public != self.public:
            self.trigger_event(ModelVisibilityChanged, public=public)

    def choose_cover(self, image_id: int | None) -> None:
        if image_id != self.image_id:
            self.trigger_event(ModelCoverChosen, image_id=image_id)

    def store_artefact(self, model_path: str, size: int, origin: str) -> None:
        """The model's file is stored (trained or uploaded): it is usable from now on (status success)."""
        self.trigger_event(ModelArtefactStored, model_path=model_path, size=size, origin=origin)

    def delete(self) -> None:
        self.trigger_event(ModelDeleted)

    def _model_renamed(self, event: ModelRenamed) -> None:
        self.name = event.name

    def _model_trigger_words_changed(self, event: ModelTriggerWordsChanged) -> None:
        self.trigger_words = event.trigger_words

    def _model_tags_changed(self, event: ModelTagsChanged) -> None:
        self.tag_ids = list(event.tag_ids)

    def _model_visibility_changed(self, event: ModelVisibilityChanged) -> None:
        self.public = event.public

    def _model_cover_chosen(self, event: ModelCoverChosen) -> None:
        self.image_id = event.image_id

    def _model_artefact_stored(self, event: ModelArtefactStored) -> None:
        self.model_path, self.status, self.progress = event.model_path, "success", 100

    def _model_deleted(self, event: ModelDeleted) -> None:
        self.deleted = True

    WHEN: ClassVar[EventHandlers] = {
        ModelRenamed: _model_renamed,
        ModelTriggerWordsChanged: _model_trigger_words_changed,
        ModelTagsChanged: _model_tags_changed,
        ModelVisibilityChanged: _model_visibility_changed,
        ModelCoverChosen: _model_cover_chosen,
        ModelArtefactStored: _model_artefact_stored,
        ModelDeleted: _model_deleted,
    }


def clean_trigger_words(raw: str) -> str:
    words = raw.strip()
    if _CONTROL.search(words) or not storable(words):
        raise Invalid("trigger_words cannot contain control characters.", field="body.trigger_words")
    return words


def _check_source(app: CommandApp, owner: Actor, source: int) -> None:
    check_visible(app, owner, "model", "model", source, "body.source")


def create_model(app: CommandApp, actor: Actor, *, name: str, type: str, base_model: str, source: int | None,
                 trigger_words: str, tags: list[str], public: bool, data: dict[str, Any],
                 idempotency_key: IdempotencyArg = None) -> tuple[Model, int]:
    assert actor.user_id is not None, "routes require a logged-in user"
    name = clean_name(name)
    trigger_words = clean_trigger_words(trigger_words)
    if source is not None:
        _check_source(app, actor, source)
    data = check_items(app, actor, data, "body.data")
    if not any(data[key] for key in ("oss", "images", "choices")):
        raise Invalid("data must name at least one training file (oss), image or featured collection.",
                      field="body.data")

    def attempt() -> tuple[Model, int]:
        tag_ids, new_tags, claims = resolve_tags(app, actor, tags)
        model = Model._create(ModelCreated, id=aggregate_uuid("model", new_id()), name=name, type=type,
                              base_model=base_model, source=source, trigger_words=trigger_words, tag_ids=tag_ids,
                              public=public, user_id=actor.user_id, data=data, status=INITIAL)
        return model, app.store(model, *new_tags, claims=claims, idempotency_key=idempotency_key)

    return retry_on_tag_race(attempt)


def check_patch_fields(sent: dict[str, Any]) -> None:
    """Refuse what a client may not set, before anything is loaded: bad input changes nothing."""
    if "status" in sent:
        raise Invalid("Training is not available yet: a model's status cannot be set in this version "
                      "(models stay 'initial').", field="body.status")
    for name in READ_ONLY:
        if name in sent:
            raise Invalid(f"{name} is read-only: the training process sets it.", field=f"body.{name}")


def change_model(app: CommandApp, actor: Actor, number: int, sent: dict[str, Any]) -> tuple[Model, int]:
    """Change the fields sent: name, trigger_words, tags, public, image (the cover; None removes it)."""
    check_patch_fields(sent)
    name = clean_name(sent["name"]) if "name" in sent else None
    trigger_words = clean_trigger_words(sent["trigger_words"]) if "trigger_words" in sent else None

    def attempt() -> tuple[Model, int]:
        model = app.load(Model, "model", number)
        model.check_can_change(actor)
        model.check_unlocked()
        if "image" in sent and sent["image"] is not None and sent["image"] != model.image_id:
            check_visible(app, owner_view(actor, model.user_id), "image", "image", sent["image"], "body.image")
        new_tags: list[Tag] = []
        claims: list[Claim] = []
        if "tags" in sent:
            tag_ids, new_tags, claims = resolve_tags(app, actor, sent["tags"])
            model.retag(tag_ids)
        if name is not None:
            model.rename(name)
        if trigger_words is not None:
            model.change_trigger_words(trigger_words)
        if "public" in sent:
            model.set_public(sent["public"])
        if "image" in sent:
            model.choose_cover(sent["image"])
        return model, app.store(model, *new_tags, claims=claims)

    return retry_on_tag_race(attempt)


def delete_model(app: CommandApp, actor: Actor, number: int) -> int:
    def attempt() -> int:
        model = app.load(Model, "model", number)
        model.check_can_change(actor)
        model.check_unlocked()
        model.delete()
        return app.store(model)

    return retry_on_tag_race(attempt)
