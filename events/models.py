"""Models: LoRA / checkpoint / hypernetwork / textual-inversion models and their training data.

A model is created in status `initial`. Training (docs/training.md "The lifecycle"): `ready` (requested) ->
`waiting` (its train task is queued) -> `running` (progress at the task's milestones) -> `success` (the artefact
stored) or `error` (the reason); a cancel puts back the status the model had before the request.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from events.base import Changed, Created, Deleted

# The one definition of each model vocabulary; the API's schemas, the list filters and the aggregate's rules
# take theirs from here (mypy checks every spelled-out value against these Literals).
ModelType = Literal["lora", "ckp", "hyper", "ti"]  # LoRA, checkpoint, hypernetwork, textual inversion
ModelBase = Literal["SD1.5", "SD2"]  # the Stable Diffusion family a model fits
ModelStatus = Literal["initial", "ready", "waiting", "running", "success", "error"]
MODEL_TYPES: tuple[ModelType, ...] = get_args(ModelType)
BASE_MODELS: tuple[ModelBase, ...] = get_args(ModelBase)
MODEL_STATUSES: tuple[ModelStatus, ...] = get_args(ModelStatus)


class ModelCreated(Created):
    name: str
    type: str  # one of MODEL_TYPES
    base_model: str  # one of BASE_MODELS
    source: int | None  # the model this one is trained from, if any
    trigger_words: str
    tag_ids: list[int]
    public: bool
    user_id: int
    data: dict[str, Any]  # training data: {"oss": [urls], "images": [ids], "choices": [ids]}
    status: str  # one of MODEL_STATUSES


class ModelRenamed(Changed):
    name: str


class ModelTriggerWordsChanged(Changed):
    trigger_words: str


class ModelTagsChanged(Changed):
    tag_ids: list[int]


class ModelVisibilityChanged(Changed):
    public: bool


class ModelCoverChosen(Changed):
    image_id: int | None  # None: the cover was removed


class ModelArtefactStored(Changed):
    """The model's file is in the blob store (`model_path`: its blob key; safetensors, `size` bytes) and the model is
    usable (status success, progress 100). `origin`: "trained" (a training task's RunTrained) or "uploaded" (a
    file brought by its owner). A retrain replaces the file only when it succeeds."""

    model_path: str
    size: int
    origin: str


class ModelTrainingChanged(Changed):
    """The training parameters as the owner sent them (checked against infra/training_params.py; parameters
    left out take their defaults when the task is made)."""

    training: dict[str, Any]


class ModelTrainingRequested(Changed):
    """The owner asked for training (status ready); `previous_status` comes back if it is canceled."""

    previous_status: str


class ModelTrainingQueued(Changed):
    """Train task `task_id` waits for a runner (status waiting, progress 0): made from the request, or waiting
    again after a failed attempt."""

    task_id: int


class ModelTrainingStarted(Changed):
    """A runner began the train task (status running)."""

    task_id: int


class ModelTrainingProgressed(Changed):
    """The train task passed a milestone (0..100)."""

    task_id: int
    progress: int


class ModelTrainingFailed(Changed):
    """Training ended without a model (status error): `error` says why. `task_id` is None when no task was made
    (the dataset or the parameters were refused before any GPU time was spent)."""

    task_id: int | None
    error: str


class ModelTrainingCanceled(Changed):
    """The request or its task was canceled: the model is back in `status`, the status it had before the request
    (a retrained model keeps its previous file)."""

    task_id: int | None
    status: str


class ModelDeleted(Deleted):
    pass
