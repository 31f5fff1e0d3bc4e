"""Datasets: the aggregate (its rules) and the command handlers."""

from __future__ import annotations

from typing import Any, ClassVar

from command.app import CommandApp, retry_on_conflict
from command.items import check_items
from command.owned import OwnedAggregate, clean_name, owner_view
from events.base import EventHandlers
from events.datasets import (
    DatasetCreated,
    DatasetDeleted,
    DatasetItemsReplaced,
    DatasetRenamed,
    DatasetVisibilityChanged,
)
from events.ids import aggregate_uuid, new_id
from events.store.protocol import IdempotencyArg
from infra.actor import Actor

ITEMS_FIELD = "body.items"


class Dataset(OwnedAggregate):
    what = "dataset"

    def __init__(self, name: str, items: dict[str, Any], public: bool, user_id: int) -> None:
        self.name = name
        self.items = items
        self.public = public
        self.user_id = user_id
        self.deleted = False

    def change(self, name: str | None, items: dict[str, Any] | None, public: bool | None) -> None:
        if name is not None and name != self.name:
            self.trigger_event(DatasetRenamed, name=name)
        if items is not None and items != self.items:
            self.trigger_event(DatasetItemsReplaced, items=items)
        if public is not None and public != self.public:
            self.trigger_event(DatasetVisibilityChanged, public=public)

    def delete(self) -> None:
        self.trigger_event(DatasetDeleted)

    def _dataset_renamed(self, event: DatasetRenamed) -> None:
        self.name = event.name

    def _dataset_items_replaced(self, event: DatasetItemsReplaced) -> None:
        self.items = event.items

    def _dataset_visibility_changed(self, event: DatasetVisibilityChanged) -> None:
        self.public = event.public

    def _dataset_deleted(self, event: DatasetDeleted) -> None:
        self.deleted = True

    WHEN: ClassVar[EventHandlers] = {
        DatasetRenamed: _dataset_renamed,
        DatasetItemsReplaced: _dataset_items_replaced,
        DatasetVisibilityChanged: _dataset_visibility_changed,
        DatasetDeleted: _dataset_deleted,
    }


def create_dataset(app: CommandApp, actor: Actor, name: str, items: dict[str, Any], public: bool,
                   idempotency_key: IdempotencyArg = None) -> tuple[Dataset, int]:
    assert actor.user_id is not None, "routes require a logged-in user"
    name = clean_name(name)
    items = check_items(app, actor, items, ITEMS_FIELD)

    def attempt() -> tuple[Dataset, int]:
        dataset = Dataset._create(DatasetCreated, id=aggregate_uuid("dataset", new_id()), name=name, items=items,
                                  public=public, user_id=actor.user_id)
        return dataset, app.store(dataset, idempotency_key=idempotency_key)

    return retry_on_conflict(attempt)


def change_dataset(app: CommandApp, actor: Actor, number: int, *, name: str | None = None,
                   items: dict[str, Any] | None = None, public: bool | None = None) -> tuple[Dataset, int]:
    """Change the fields given (None = leave as it is); `items` replaces all items."""
    if name is not None:
        name = clean_name(name)

    def attempt() -> tuple[Dataset, int]:
        dataset = app.load(Dataset, "dataset", number)
        dataset.check_can_change(actor)
        checked = None if items is None else check_items(app, owner_view(actor, dataset.user_id), items,
                                                           ITEMS_FIELD)
        dataset.change(name, checked, public)
        return dataset, app.store(dataset)

    return retry_on_conflict(attempt)


def delete_dataset(app: CommandApp, actor: Actor, number: int) -> int:
    def attempt() -> int:
        dataset = app.load(Dataset, "dataset", number)
        dataset.check_can_change(actor)
        dataset.delete()
        return app.store(dataset)

    return retry_on_conflict(attempt)
