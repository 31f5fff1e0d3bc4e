"""Tags: the aggregate (its rules) and the command handlers."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from typing import Any

from command.aggregate import NumberedAggregate
from command.app import CommandApp, retry_on_conflict
from command.claims import claim
from events.ids import aggregate_uuid, new_id
from events.store.protocol import ClaimConflict, IdempotencyArg
from events.tags import TagCreated, TagDeleted, TagRenamed
from infra.actor import Actor
from infra.errors import Conflict, Forbidden
from infra.tag_names import clean_tag_name


class Tag(NumberedAggregate):
    def __init__(self, name: str, user_id: int | None) -> None:
        self.name = name
        self.user_id = user_id
        self.deleted = False

    @property
    def created_at(self) -> datetime:
        return self.created_on

    def rename(self, name: str) -> None:
        if name != self.name:
            self.trigger_event(TagRenamed, name=name, previous_name=self.name)

    def delete(self) -> None:
        self.trigger_event(TagDeleted, name=self.name)

    @singledispatchmethod
    def when(self, event: Any) -> None:
        raise NotImplementedError(type(event))

    @when.register
    def _(self, event: TagRenamed) -> None:
        self.name = event.name

    @when.register
    def _(self, event: TagDeleted) -> None:
        self.deleted = True


def _may_change(actor: Actor, tag: Tag) -> None:
    # Tags are public: another user gets 403, not 404. Tags from before accounts have no creator: admins only.
    if not (actor.is_admin or actor.owns(tag.user_id)):
        raise Forbidden("Only the tag's creator or an admin may change it.")


def _name_taken(name: str) -> Conflict:
    return Conflict(f"A tag named {name!r} exists already (names are unique, ignoring case).")


def create_tag(app: CommandApp, actor: Actor, name: str, idempotency_key: IdempotencyArg = None) -> tuple[Tag, int]:
    name = clean_tag_name(name)
    prefix = app.settings.subject_prefix

    def attempt() -> tuple[Tag, int]:
        number = new_id()
        tag = Tag._create(TagCreated, id=aggregate_uuid("tag", number), name=name, user_id=actor.user_id)
        seq = app.store(tag, claims=[claim(prefix, "tagname", name, str(number))], idempotency_key=idempotency_key)
        return tag, seq

    try:
        return retry_on_conflict(attempt)
    except ClaimConflict:
        raise _name_taken(name) from None


def rename_tag(app: CommandApp, actor: Actor, number: int, name: str | None) -> tuple[Tag, int]:
    """Rename (None: change nothing, as a PATCH without fields does everywhere, after the same checks)."""
    if name is None:
        tag = app.load(Tag, "tag", number)
        _may_change(actor, tag)
        return tag, 0
    name = clean_tag_name(name)
    prefix = app.settings.subject_prefix

    def attempt() -> tuple[Tag, int]:
        tag = app.load(Tag, "tag", number)
        _may_change(actor, tag)
        old = tag.name
        tag.rename(name)
        if old.casefold() == name.casefold():
            return tag, app.store(tag)
        seq = app.store(tag, claims=[claim(prefix, "tagname", name, str(number))],
                        releases=[claim(prefix, "tagname", old, str(number))])
        return tag, seq

    try:
        return retry_on_conflict(attempt)
    except ClaimConflict:
        raise _name_taken(name) from None


def delete_tag(app: CommandApp, actor: Actor, number: int) -> int:
    prefix = app.settings.subject_prefix

    def attempt() -> int:
        tag = app.load(Tag, "tag", number)
        _may_change(actor, tag)
        tag.delete()
        return app.store(tag, releases=[claim(prefix, "tagname", tag.name, str(number))])

    return retry_on_conflict(attempt)
