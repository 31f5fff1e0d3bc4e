"""Datasets: named training sets. `items` is `{"oss": [urls], "images": [image ids], "choices": [choice ids]}`,
stored as a plain dict so the payload stays JSON and readable in the audit trail."""

from __future__ import annotations

from typing import Any

from events.base import Changed, Created, Deleted


class DatasetCreated(Created):
    name: str
    items: dict[str, Any]
    public: bool
    user_id: int


class DatasetRenamed(Changed):
    name: str


class DatasetItemsReplaced(Changed):
    items: dict[str, Any]


class DatasetVisibilityChanged(Changed):
    public: bool


class DatasetDeleted(Deleted):
    pass
