"""Models: LoRA / checkpoint / hypernetwork / textual-inversion models and their training data.

A model is created in status `initial`. The training lifecycle (`ready`, `waiting`, `running`, `success`,
`error`) is a later issue; its events will join this module, and `ModelCreated` already records the status so
that a rebuild never has to guess it.
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


class ModelDeleted(Deleted):
    pass
