"""Params: saved parameter sets (free-form JSON `data`) with a name, an owner and a public flag."""

from __future__ import annotations

from typing import Any

from events.base import Changed, Created, Deleted


class ParamCreated(Created):
    name: str
    data: dict[str, Any]
    public: bool
    user_id: int


class ParamRenamed(Changed):
    name: str


class ParamDataReplaced(Changed):
    data: dict[str, Any]


class ParamVisibilityChanged(Changed):
    public: bool


class ParamDeleted(Deleted):
    pass
