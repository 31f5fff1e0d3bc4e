"""Featured collections (choices): the aggregate and the command handlers.

An image may be put in a collection only if the collection's OWNER can see it (an admin editing someone's
collection cannot slip in images its owner could not see). Images already in the collection are not checked
again on a change: an image that was deleted or turned private meanwhile stays in the aggregate, and the read
model leaves it out (deleted) or hides it from those who cannot see it (private).
"""

from __future__ import annotations

from typing import Any, ClassVar

from command.aggregate import NumberedAggregate
from command.app import CommandApp, retry_on_conflict
from command.images import MAX_NAME, clean_text, load_visible_image
from events.base import EventHandlers
from events.choices import ChoiceChanged, ChoiceCreated, ChoiceDeleted
from events.ids import aggregate_uuid, new_id
from events.store.protocol import IdempotencyArg
from infra.actor import Actor
from infra.authz import check_can_change
from infra.errors import Invalid, NotFound

MAX_ITEMS = 500


class Choice(NumberedAggregate):
    def __init__(self, user_id: int, name: str, public: bool, items: list[dict[str, Any]]) -> None:
        self.user_id = user_id
        self.name = name
        self.public = public
        self.items = items
        self.deleted = False

    def change(self, name: str | None, public: bool | None, items: list[dict[str, Any]] | None) -> None:
        name = None if name == self.name else name
        public = None if public == self.public else public
        items = None if items == self.items else items
        if name is not None or public is not None or items is not None:
            self.trigger_event(ChoiceChanged, name=name, public=public, items=items)

    def delete(self) -> None:
        self.trigger_event(ChoiceDeleted)

    def _choice_changed(self, event: ChoiceChanged) -> None:
        if event.name is not None:
            self.name = event.name
        if event.public is not None:
            self.public = event.public
        if event.items is not None:
            self.items = list(event.items)

    def _choice_deleted(self, event: ChoiceDeleted) -> None:
        self.deleted = True

    WHEN: ClassVar[EventHandlers] = {ChoiceChanged: _choice_changed, ChoiceDeleted: _choice_deleted}


def _clean_name(name: str) -> str:
    name = clean_text(name, "name", MAX_NAME)
    if not name:
        raise Invalid("A collection needs a name.", field="body.name")
    return name


def _check_items(app: CommandApp, owner_id: int, items: list[dict[str, Any]], known: set[int]) -> None:
    """Every image new to the collection exists and its owner can see it; no image twice."""
    if len(items) > MAX_ITEMS:
        raise Invalid(f"A collection holds at most {MAX_ITEMS} images.", field="body.items")
    owner = Actor(user_id=owner_id, role="user")
    seen: set[int] = set()
    for position, item in enumerate(items):
        image_id = item["image_id"]
        where = f"body.items.{position}.image_id"
        if image_id in seen:
            raise Invalid(f"Image {image_id} is in the list twice.", field=where)
        seen.add(image_id)
        if image_id in known:
            continue
        try:
            load_visible_image(app, owner, image_id)
        except NotFound:
            raise Invalid(f"Image {image_id} does not exist or the collection's owner cannot see it.",
                          field=where) from None


def create_choice(app: CommandApp, actor: Actor, name: str, public: bool, items: list[dict[str, Any]],
                  idempotency_key: IdempotencyArg = None) -> tuple[Choice, int]:
    assert actor.user_id is not None, "routes require a user"
    owner_id = actor.user_id
    name = _clean_name(name)
    _check_items(app, owner_id, items, set())
    number = new_id()
    choice = Choice._create(ChoiceCreated, id=aggregate_uuid("choice", number), user_id=owner_id, name=name,
                            public=public, items=items)
    return choice, app.store(choice, idempotency_key=idempotency_key)


def change_choice(app: CommandApp, actor: Actor, number: int, name: str | None, public: bool | None,
                  items: list[dict[str, Any]] | None) -> tuple[Choice, int]:
    if name is not None:
        name = _clean_name(name)

    def attempt() -> tuple[Choice, int]:
        choice = app.load(Choice, "choice", number)
        check_can_change(actor, choice.user_id, choice.public, "collection")
        if items is not None:
            _check_items(app, choice.user_id, items, {item["image_id"] for item in choice.items})
        choice.change(name, public, items)
        return choice, app.store(choice)

    return retry_on_conflict(attempt)


def delete_choice(app: CommandApp, actor: Actor, number: int) -> int:
    def attempt() -> int:
        choice = app.load(Choice, "choice", number)
        check_can_change(actor, choice.user_id, choice.public, "collection")
        choice.delete()
        return app.store(choice)

    return retry_on_conflict(attempt)
