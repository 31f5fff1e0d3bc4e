"""The shapes clients see (API.md). Input models forbid unknown and read-only fields; output models are
built by the command side from aggregates and by the query side from read-model rows, so they live here."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from infra.tag_names import MAX_TAG_NAME


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoNulls(Input):
    """A PATCH body: only the fields sent change, and an explicit null is refused (422 naming the field), except
    for the fields in `nullable`, where null has a meaning of its own (a model's cover: remove it)."""

    nullable: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError(f"{info.field_name} cannot be null; leave it out to keep it as it is")
        return value


class Page(BaseModel):
    """A list page (docs/api.md "Lists"): `total` is exact when `total_exact`, otherwise a lower bound;
    `cursor` opens the next page (send it as `?cursor=`) at the same cost however deep."""

    page: int
    page_size: int
    total: int
    total_exact: bool = True
    next: bool
    cursor: str | None = None
    list: list[Any]


class TagIn(Input):
    name: str = Field(min_length=1, max_length=MAX_TAG_NAME)


class TagPatch(NoNulls):
    name: str | None = Field(default=None, min_length=1, max_length=MAX_TAG_NAME)


class TagOut(BaseModel):
    id: int
    name: str
    user_id: int | None
    created_at: datetime
    updated_at: datetime


class TagPage(Page):
    list: list[TagOut]  # type: ignore[assignment]


class EventOut(BaseModel):
    sequence: int
    version: int
    type: str
    class_version: int
    timestamp: datetime
    data: dict[str, Any]
