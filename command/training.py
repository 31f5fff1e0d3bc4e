"""The training lifecycle's commands (docs/training.md "The lifecycle"): a request becomes a train task, and a
cancel on the model cancels its task.

`PATCH /api/models/{id} {"status": "ready"}` only records the request (command/models.py `change_model`:
`ModelTrainingRequested`, status ready, locked). The training process manager (projectors/training.py) then calls
`start_training`, which resolves the dataset (command/training_data.py) and the parameters now and appends, in ONE
write, the task (type `train`, waiting, its data the runner's whole recipe), the owner's unfinished-task entry and
the model's `ModelTrainingQueued`; or, when the request cannot run, the model's `ModelTrainingFailed` with the
reason (no task, no GPU time). It acts only on a model in status `ready`, so a redelivered or repeated request
makes no second task: the write that makes the task moves the model on.
"""

from __future__ import annotations

from typing import Any

from command.app import CommandApp, retry_on_conflict
from command.generation import WAITING_REASON
from command.generation_models import DEFAULT_CAPABILITY, resolve_base
from command.models import Model
from command.tasks import Task, user_tasks
from command.training_data import TrainingRefused, resolve_dataset
from events.ids import aggregate_uuid, new_id
from events.tasks import TaskCreated
from infra.actor import Actor
from infra.errors import Invalid, NotFound, RateLimited
from infra.training_params import InvalidTraining, validate_training

MAX_TASK_NAME = 200


def base_capability(app: CommandApp, model: Model) -> str:
    """What the training runs on, resolved as generation resolves a base (command/generation_models.py): the
    capability of a registered base model named as the source; the default base without a source, or with a source
    that is no base (a LoRA the model derives from). A user's own checkpoint as the source is refused for now: the
    runner trains on registered bases only, and training on another base than the one named would be wrong."""
    if model.source is None:
        return DEFAULT_CAPABILITY
    try:
        source = app.load(Model, "model", model.source)
    except NotFound:
        raise TrainingRefused(f"The source model {model.source} was deleted: it cannot be trained on.") from None
    if source.type != "ckp":
        return DEFAULT_CAPABILITY
    try:
        base = resolve_base(app, Actor(user_id=model.user_id, role="user"), source.number)
    except Invalid as bad:
        raise TrainingRefused(f"The source model {source.number} cannot be trained on: {bad.detail}") from None
    if "checkpoint_key" in base:
        raise TrainingRefused(f"The source model {source.number} is a user's checkpoint; training on top of one is "
                              "not available yet: choose a registered base model, or no source.")
    return str(base["capability"])


def train_recipe(app: CommandApp, model: Model) -> dict[str, Any]:
    """The train task's `data` (the contract with the runner, docs/training.md), or TrainingRefused."""
    try:
        training = validate_training(model.type, model.training)
    except InvalidTraining as bad:  # the bounds changed since the parameters were accepted
        raise TrainingRefused(f"The training parameters are no longer accepted: {bad}.") from None
    return {"kind": "train", "model_id": model.number, "model_type": model.type, "base_model": model.base_model,
            "base_capability": base_capability(app, model), "trigger_words": model.trigger_words,
            "training": training, "dataset": resolve_dataset(app, model), "public": model.public}


def start_training(app: CommandApp, model_id: int) -> int:
    """Turn the model's request into its train task (or its refusal); 0 when there is nothing to do (the model is
    not `ready`: the task was made already, the request was canceled, the model is gone)."""
    def attempt() -> int:
        try:
            model = app.load(Model, "model", model_id)
        except NotFound:
            return 0
        if model.status != "ready":
            return 0
        number = new_id()
        mine = user_tasks(app, model.user_id)
        try:
            data = train_recipe(app, model)
            mine.add(number, app.settings.task_max_unfinished)
        except TrainingRefused as refused:
            model.refuse_training(refused.reason[:2000])
            return app.store(model)
        except RateLimited as full:
            model.refuse_training(full.detail)
            return app.store(model)
        task = Task._create(TaskCreated, id=aggregate_uuid("task", number), user_id=model.user_id, type="train",
                            name=f"train {model.name}"[:MAX_TASK_NAME], data=data, tag_ids=[], public=model.public)
        task.queue(WAITING_REASON)
        model.queue_training(number)
        return app.store(task, mine, model)

    return retry_on_conflict(attempt)


def cancel_training(app: CommandApp, actor: Actor, number: int) -> tuple[Model, int]:
    """`{"status": "canceled"}` on a training model (owner or admin): its task (if made) is canceled and the model
    goes back to the status it had before the request, in one write. 409 when it is not training."""
    def attempt() -> tuple[Model, int]:
        model = app.load(Model, "model", number)
        model.check_can_change(actor)
        task = _task(app, model.training_task) if model.status in ("waiting", "running") else None
        if task is None or not task.cancel(actor):
            model.cancel_training()  # a request with no task yet (or, defensively, a task already ended)
            return model, app.store(model)
        model.follow_task(task.number, task.status, task.progress, task.error)
        mine = user_tasks(app, task.user_id)
        mine.finish(task.number)
        return model, app.store(task, mine, model)

    return retry_on_conflict(attempt)


def _task(app: CommandApp, number: int | None) -> Task | None:
    if number is None:
        return None
    try:
        return app.load(Task, "task", number)
    except NotFound:
        return None
