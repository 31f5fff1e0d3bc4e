"""The shapes clients see for images and featured collections (API.md). Input models forbid unknown and
read-only fields (a client can never set `user_id`, `likes` or `url`); in PATCH bodies an omitted field stays as
it is and an explicit null is refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from infra.schemas import Input, NoNulls, Page
from infra.tag_names import MAX_TAG_NAME

MAX_ID = 2**53 - 1
MAX_TAGS = 20
MAX_CHOICE_ITEMS = 500

ObjectRef = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
TagNames = Annotated[list[Annotated[str, Field(strict=True, max_length=MAX_TAG_NAME)]], Field(max_length=MAX_TAGS)]
Weight = Annotated[float, Field(strict=True, ge=0, le=1_000_000, allow_inf_nan=False)]
Flag = Annotated[bool, Field(strict=True)]


# Images

class ImageUser(BaseModel):
    id: int
    name: str | None


class ImageFields(BaseModel):
    """An image as clients see it, but its like count (see ImageOut, ImageWritten)."""

    id: int
    name: str
    width: int
    height: int
    prompt: str
    negative_prompt: str
    num_inference_steps: int | None
    guidance_scale: float | None
    scheduler: str | None
    seed: int | None
    from_image: str | None
    model_id: int | None
    loras: list[Any]
    url: str
    thumbnail_url: str | None
    tags: list[str]
    public: bool
    user_id: int
    user: ImageUser
    task_id: int | None
    created_at: datetime
    updated_at: datetime


class ImageOut(ImageFields):
    """An image as a GET shows it."""

    likes: int


class ImageWritten(ImageFields):
    """An image as a write answers it, from the command side's aggregates: `likes` is 0 for a new image and
    null after a change (the count lives in the likes read model: GET the image for it)."""

    likes: int | None


class ImagePage(Page):
    list: list[ImageOut]  # type: ignore[assignment]
    # The order used: the `sort` asked for, `similar` for `similar=`, or `date-` where a recommendation had
    # nothing to start from (no likes, no history, an image without an embedding yet).
    sort_applied: str = "date-"


class ImagePatch(NoNulls):
    name: Annotated[str, Field(strict=True, max_length=200)] | None = None
    tags: TagNames | None = None
    public: Flag | None = None


class UploadFields(Input):
    """The text fields of a multipart upload, after the form was read (tags already split on commas)."""

    name: Annotated[str, Field(max_length=200)] | None = None
    prompt: Annotated[str, Field(max_length=4000)] = ""
    negative_prompt: Annotated[str, Field(max_length=4000)] = ""
    tags: TagNames = Field(default_factory=list)
    public: bool = True


# Featured collections (choices)

class ChoiceItem(Input):
    image_id: ObjectRef
    weight: Weight = 1.0


class ChoiceIn(Input):
    name: Annotated[str, Field(strict=True, min_length=1, max_length=200)]
    public: Flag = True
    items: Annotated[list[ChoiceItem], Field(max_length=MAX_CHOICE_ITEMS)] = Field(default_factory=list)


class ChoicePatch(NoNulls):
    name: Annotated[str, Field(strict=True, min_length=1, max_length=200)] | None = None
    public: Flag | None = None
    items: Annotated[list[ChoiceItem], Field(max_length=MAX_CHOICE_ITEMS)] | None = None


class ChoiceItemOut(BaseModel):
    image_id: int
    weight: float


class ChoiceOut(BaseModel):
    id: int
    name: str
    public: bool
    user_id: int
    items: list[ChoiceItemOut]
    created_at: datetime
    updated_at: datetime


class ChoicePage(Page):
    list: list[ChoiceOut]  # type: ignore[assignment]
