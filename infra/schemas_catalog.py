"""The shapes clients see for params, datasets and models (API.md). Input models forbid unknown and read-only
fields (a client can never set `user_id`, `status` or `progress` by sending it); in PATCH bodies an omitted field
is left as it is and an explicit null is refused, except where null has a meaning of its own (a model's cover)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from events.models import BASE_MODELS, MODEL_TYPES, ModelBase, ModelType
from infra.schemas import Input, NoNulls, Page
from infra.tag_names import MAX_TAG_NAME

MAX_ID = 2**53 - 1
MAX_OSS_ITEMS = 1000
MAX_IMAGE_ITEMS = 500
MAX_CHOICE_ITEMS = 100
MAX_REPEATS = 100  # kohya's folder repeat count; gpu_runner/training/dataset.py Limits.max_repeats
MAX_TAGS = 20

ObjectRef = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Flag = Annotated[bool, Field(strict=True)]  # true or false, not "yes" or 1
TriggerWords = Annotated[str, Field(max_length=1000)]
TagNames = Annotated[list[Annotated[str, Field(max_length=MAX_TAG_NAME)]], Field(max_length=MAX_TAGS)]


def any_case(*spellings: str) -> BeforeValidator:
    """Accept any case of one of `spellings` and keep its canonical spelling (the list filters, which read
    `type=LORA` too, compare against what is stored)."""
    canonical = {spelling.lower(): spelling for spelling in spellings}

    def spell(value: Any) -> Any:
        return canonical.get(value.lower(), value) if isinstance(value, str) else value

    return BeforeValidator(spell)


# Names and values are checked against the model's type by infra/training_params.py (a 422 naming each one).
TrainingParams = Annotated[dict[str, Any], Field(max_length=32, description=(
    "Training parameters (docs/training.md: steps, learning_rate, batch_size, resolution, rank, alpha, "
    "num_vectors, ...); each has bounds per model type, and those left out take the type's defaults."))]
ModelTypeName = Annotated[ModelType, any_case(*MODEL_TYPES)]
BaseModelName = Annotated[ModelBase, any_case(*BASE_MODELS)]


class Patch(NoNulls):
    """A PATCH body: only the fields sent change; null is not a value unless a subclass says so."""

    def sent(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class Items(Input):
    """Training material: URLs of uploaded files (a `.txt` beside an image, same name, is its caption), image ids,
    featured collection (choice) ids, and how many times each item is seen per epoch (`repeats`)."""

    oss: list[Annotated[str, Field(max_length=2048)]] = Field(default_factory=list, max_length=MAX_OSS_ITEMS)
    images: list[ObjectRef] = Field(default_factory=list, max_length=MAX_IMAGE_ITEMS)
    choices: list[ObjectRef] = Field(default_factory=list, max_length=MAX_CHOICE_ITEMS)
    repeats: Annotated[int, Field(strict=True, ge=1, le=MAX_REPEATS)] = 1


# Params

def name_from_data(raw: Any) -> Any:
    """The original spec's Param has no fixed fields (API.md: "free-form JSON `data` with a `name`"), so a client
    may keep the name inside `data`: without a top-level `name`, `data.name` is the name (docs/catalog.md)."""
    if isinstance(raw, dict) and "name" not in raw and isinstance(raw.get("data"), dict) and "name" in raw["data"]:
        name = raw["data"]["name"]
        if not isinstance(name, str):
            raise ValueError("data.name is the param's name when no top-level name is sent, so it must be text")
        return {**raw, "name": name}
    return raw


class ParamIn(Input):
    name: Name
    data: dict[str, Any] = Field(default_factory=dict)
    public: Flag = False

    @model_validator(mode="before")
    @classmethod
    def _name(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and "name" not in name_from_data(raw):
            raise ValueError("a param needs a name: send name, or data.name")
        return name_from_data(raw)


class ParamPatch(Patch):
    name: Name | None = None
    data: dict[str, Any] | None = None
    public: Flag | None = None

    @model_validator(mode="before")
    @classmethod
    def _name(cls, raw: Any) -> Any:
        return name_from_data(raw)


class ParamOut(BaseModel):
    id: int
    name: str
    data: dict[str, Any]
    public: bool
    user_id: int
    created_at: datetime
    updated_at: datetime


class ParamPage(Page):
    list: list[ParamOut]  # type: ignore[assignment]


# Datasets

class DatasetIn(Input):
    name: Name
    items: Items = Field(default_factory=Items)
    public: Flag = False


class DatasetPatch(Patch):
    name: Name | None = None
    items: Items | None = None
    public: Flag | None = None


class DatasetOut(BaseModel):
    id: int
    name: str
    items: Items
    public: bool
    user_id: int
    created_at: datetime
    updated_at: datetime


class DatasetPage(Page):
    list: list[DatasetOut]  # type: ignore[assignment]


# Models

class ModelIn(Input):
    name: Name
    type: ModelTypeName
    base_model: BaseModelName
    source: ObjectRef | None = None
    trigger_words: TriggerWords = ""
    tags: TagNames = Field(default_factory=list)
    public: Flag = False
    data: Items
    training: TrainingParams | None = None


class ModelPatch(Patch):
    nullable: ClassVar[tuple[str, ...]] = ("image",)

    name: Name | None = None
    trigger_words: TriggerWords | None = None
    tags: TagNames | None = None
    public: Flag | None = None
    image: ObjectRef | None = None  # the cover: an image id the owner can see; null removes it
    training: TrainingParams | None = None  # replaces the parameters as a whole
    # Checked by command/models.py for a precise 422: "ready" asks for training, "canceled" stops it.
    status: Any = Field(default=None, description='"ready" (ask for training) or "canceled" (stop it, sent '
                                                  'alone); any other value is 422.')
    # Accepted here only to answer them with a precise 422 (see command/models.py), never applied.
    progress: Any = Field(default=None, description="Read-only (422).")
    model_path: Any = Field(default=None, description="Read-only (422).")
    error: Any = Field(default=None, description="Read-only (422).")
    task_id: Any = Field(default=None, description="Read-only (422).")


class ModelOut(BaseModel):
    id: int
    name: str
    type: str
    base_model: str
    trigger_words: str
    model_path: str | None
    status: str
    progress: int
    image: str | None  # the cover image's URL
    image_id: int | None
    tags: list[str]
    public: bool
    user_id: int
    source: int | None
    dataset: Items  # the training data the model was created with
    training: dict[str, Any]  # the training parameters as sent (defaults fill the rest: docs/training.md)
    task_id: int | None  # the train task of the current or last training request
    error: str | None  # why the last training failed (while status is error)
    created_at: datetime
    updated_at: datetime


class ModelPage(Page):
    list: list[ModelOut]  # type: ignore[assignment]
