"""The public integer id of the object an event belongs to."""

from __future__ import annotations

from typing import Any

from events.ids import split_uuid


def object_id(event: Any) -> int:
    split = split_uuid(event.originator_id)
    assert split is not None, "aidraw events always carry a kind-coded aggregate id"
    return split[1]
