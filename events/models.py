"""Models: LoRA / checkpoint / hypernetwork / textual-inversion models and their training data.

A model is created in status `initial`. The training lifecycle (`ready`, `waiting`, `running`, `success`,
`error`) is a later issue; its events will join this module, and `ModelCreated` already records the status so
that a rebuild never has to guess it.
"""

from __future__ import annotations

from typing import Any

from events.base import Changed, Created, Deleted


class ModelCreated(Created):
    name: str
    type: str  # lora | ckp | hyper | ti
    base_model: str  # SD1.5 | SD2
    source: int | None  # the model this one is trained from, if any
    trigger_words: str
    tag_ids: list[int]
    public: bool
    user_id: int
    data: dict[str, Any]  # training data: {"oss": [urls], "images": [ids], "choices": [ids]}
    status: str


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


class ModelDeleted(Deleted):
    pass
