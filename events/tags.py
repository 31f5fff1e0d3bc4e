"""Tags: shared labels of images and models, names unique case-insensitively."""

from __future__ import annotations

from typing import Any

from events.base import Changed, Created, Deleted


class TagCreated(Created):
    """class_version 2 added `user_id` (the creator); v1 tags had no recorded creator."""

    class_version = 2
    name: str
    user_id: int | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["user_id"] = None


class TagRenamed(Changed):
    name: str
    previous_name: str


class TagDeleted(Deleted):
    name: str


class TagShared(Changed):
    """Someone other than the creator put the tag on an object of theirs, for the first time: from now on only
    admins may rename or delete it. Recorded once per tag (later users change nothing)."""

    user_id: int
