"""Featured collections (choices, 精選集): a named, weighted list of images, owned by a user."""

from __future__ import annotations

from typing import Any

from events.base import Changed, Created, Deleted


class ChoiceCreated(Created):
    """`items` is a list of {"image_id": int, "weight": float}, in the owner's order."""

    user_id: int
    name: str
    public: bool
    items: list[dict[str, Any]]


class ChoiceChanged(Changed):
    """What the owner changed; None fields were left as they were. `items` replaces the whole list."""

    name: str | None
    public: bool | None
    items: list[dict[str, Any]] | None


class ChoiceDeleted(Deleted):
    pass
