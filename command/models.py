"""Models: the aggregate (its rules) and the command handlers.

The training lifecycle's rules are the aggregate's (docs/training.md "The lifecycle"): a request (`ready`) from
`initial`, `error` or `success`; then the model follows its train task (`follow_task`: waiting, running with the
task's milestones, error) until the artefact is stored (`store_artefact`: success) or the training is canceled
(back to the status before the request). While `ready`, `waiting` or `running` it is locked (`check_unlocked`).
The handlers that make and follow the task are in command/training.py.
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
    ModelTrainingCanceled,
    ModelTrainingChanged,
    ModelTrainingFailed,
    ModelTrainingProgressed,
    ModelTrainingQueued,
    ModelTrainingRequested,
    ModelTrainingStarted,
    ModelTriggerWordsChanged,
    ModelVisibilityChanged,
)
from events.store.protocol import Claim, IdempotencyArg
from infra.actor import Actor
from infra.errors import Conflict, Invalid
from infra.training_params import InvalidTraining, validate_training

INITIAL: ModelStatus = "initial"
# Training asked for (its task being made), queued or running: no changes but a cancel.
LOCKED: frozenset[ModelStatus] = frozenset({"ready", "waiting", "running"})
SETTABLE_STATUSES = ("ready", "canceled")  # what a client may send: ask for training, or cancel it
READ_ONLY = ("progress", "model_path", "error", "task_id")
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
        self.training: dict[str, Any] = {}
        self.previous_status: str = status  # what a cancel puts back
        self.training_task: int | None = None  # the train task of the current (or last) request
        self.error: str | None = None  # why the last training failed
        self.deleted = False

    @property
    def locked(self) -> bool:
        return self.status in LOCKED

    def check_unlocked(self) -> None:
        if self.locked:
            raise Conflict(f"The model is {self.status} (training); it cannot be changed or deleted until "
                           "training ends or is canceled (PATCH {\"status\": \"canceled\"}).")

    # Training

    def set_training(self, training: dict[str, Any]) -> None:
        if training != self.training:
            self.trigger_event(ModelTrainingChanged, training=dict(training))

    def request_training(self) -> None:
        """Ask for training (from initial, error or success: a retrain keeps the previous file until it succeeds)."""
        self.check_unlocked()
        self.trigger_event(ModelTrainingRequested, previous_status=self.status)

    def queue_training(self, task_id: int) -> None:
        """The request became train task `task_id`."""
        if self.status != "ready":
            raise Conflict(f"The model is {self.status}: only a model in status ready gets a train task.")
        self.trigger_event(ModelTrainingQueued, task_id=task_id)

    def refuse_training(self, reason: str) -> None:
        """The request cannot become a task (its dataset or parameters): error, before any GPU time."""
        if self.status == "ready":
            self.trigger_event(ModelTrainingFailed, task_id=None, error=reason)

    def follow_task(self, task_id: int, status: str, progress: int, error: str | None) -> bool:
        """Take the state of this model's train task (not a success: that is `store_artefact`); whether anything
        changed. A task of an older request, or a model no longer training, changes nothing."""
        if task_id != self.training_task or self.status not in ("waiting", "running"):
            return False
        before = len(self.pending_events)
        if status == "waiting" and self.status == "running":
            self.trigger_event(ModelTrainingQueued, task_id=task_id)
        elif status == "running":
            if self.status != "running" or progress < self.progress:  # started, or started again (a redelivery)
                self.trigger_event(ModelTrainingStarted, task_id=task_id)
            if progress > self.progress:
                self.trigger_event(ModelTrainingProgressed, task_id=task_id, progress=progress)
        elif status == "error":
            self.trigger_event(ModelTrainingFailed, task_id=task_id, error=error or "training failed")
        elif status == "canceled":
            self.cancel_training()
        return len(self.pending_events) > before

    def cancel_training(self) -> None:
        if not self.locked:
            raise Conflict(f"The model is {self.status}, not training: there is nothing to cancel.")
        task_id = None if self.status == "ready" else self.training_task
        self.trigger_event(ModelTrainingCanceled, task_id=task_id, status=self.previous_status)

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

    def _model_training_changed(self, event: ModelTrainingChanged) -> None:
        self.training = dict(event.training)

    def _model_training_requested(self, event: ModelTrainingRequested) -> None:
        self.previous_status, self.status = event.previous_status, "ready"

    def _model_training_queued(self, event: ModelTrainingQueued) -> None:
        self.status, self.progress, self.training_task = "waiting", 0, event.task_id

    def _model_training_started(self, event: ModelTrainingStarted) -> None:
        self.status, self.progress = "running", 0

    def _model_training_progressed(self, event: ModelTrainingProgressed) -> None:
        self.progress = event.progress

    def _model_training_failed(self, event: ModelTrainingFailed) -> None:
        self.status, self.error, self.progress = "error", event.error, 0

    def _model_training_canceled(self, event: ModelTrainingCanceled) -> None:
        self.status = event.status
        self.progress = 100 if event.status == "success" else 0

    def _model_deleted(self, event: ModelDeleted) -> None:
        self.deleted = True

    WHEN: ClassVar[EventHandlers] = {
        ModelRenamed: _model_renamed,
        ModelTriggerWordsChanged: _model_trigger_words_changed,
        ModelTagsChanged: _model_tags_changed,
        ModelVisibilityChanged: _model_visibility_changed,
        ModelCoverChosen: _model_cover_chosen,
        ModelArtefactStored: _model_artefact_stored,
        ModelTrainingChanged: _model_training_changed,
        ModelTrainingRequested: _model_training_requested,
        ModelTrainingQueued: _model_training_queued,
        ModelTrainingStarted: _model_training_started,
        ModelTrainingProgressed: _model_training_progressed,
        ModelTrainingFailed: _model_training_failed,
        ModelTrainingCanceled: _model_training_canceled,
        ModelDeleted: _model_deleted,
    }


def clean_trigger_words(raw: str) -> str:
    words = raw.strip()
    if _CONTROL.search(words) or not storable(words):
        raise Invalid("trigger_words cannot contain control characters.", field="body.trigger_words")
    return words


def _check_source(app: CommandApp, owner: Actor, source: int) -> None:
    check_visible(app, owner, "model", "model", source, "body.source")


def check_training(model_type: str, training: dict[str, Any]) -> dict[str, Any]:
    """The parameters as stored (whole numbers as ints), or a 422 naming every bad one (docs/training.md)."""
    try:
        merged = validate_training(model_type, training)
    except InvalidTraining as bad:
        raise Invalid(f"training: {bad}", errors=[
            {"loc": ["body", "training", name], "msg": reason, "type": "value_error"}
            for name, reason in bad.errors.items()]) from None
    return {name: merged[name] for name in training}


def create_model(app: CommandApp, actor: Actor, *, name: str, type: str, base_model: str, source: int | None,
                 trigger_words: str, tags: list[str], public: bool, data: dict[str, Any],
                 training: dict[str, Any] | None = None, idempotency_key: IdempotencyArg = None) -> tuple[Model, int]:
    assert actor.user_id is not None, "routes require a logged-in user"
    name = clean_name(name)
    trigger_words = clean_trigger_words(trigger_words)
    training = check_training(type, training) if training else {}
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
        model.set_training(training)
        return model, app.store(model, *new_tags, claims=claims, idempotency_key=idempotency_key)

    return retry_on_tag_race(attempt)


def check_patch_fields(sent: dict[str, Any]) -> None:
    """Refuse what a client may not set, before anything is loaded: bad input changes nothing."""
    if "status" in sent and sent["status"] not in SETTABLE_STATUSES:
        raise Invalid("status can only be set to ready (ask for training) or canceled (stop it); the training "
                      "process sets every other status.", field="body.status")
    if sent.get("status") == "canceled" and len(sent) > 1:
        raise Invalid('A cancel is sent alone: {"status": "canceled"}.', field="body.status")
    for name in READ_ONLY:
        if name in sent:
            raise Invalid(f"{name} is read-only: the training process sets it.", field=f"body.{name}")


def change_model(app: CommandApp, actor: Actor, number: int, sent: dict[str, Any]) -> tuple[Model, int]:
    """Change the fields sent: name, trigger_words, tags, public, image (the cover; None removes it), training;
    then, with `status: ready`, ask for training, all in one write. (A cancel is command/training.py's.)"""
    check_patch_fields(sent)
    assert sent.get("status") in (None, "ready"), "a cancel goes to command/training.py"
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
        if "training" in sent:
            model.set_training(check_training(model.type, sent["training"]))
        if sent.get("status") == "ready":
            if not any(model.data.get(key) for key in ("oss", "images", "choices")):  # an uploaded model
                raise Invalid("The model has no training data (oss, images or featured collections) to train on.",
                              field="body.status")
            model.request_training()
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
