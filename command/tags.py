"""Tags: the aggregate (its rules) and the command handlers."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from command.aggregate import NumberedAggregate
from command.app import CommandApp, retry_on_conflict
from command.claims import claim
from events.base import EventHandlers
from events.ids import aggregate_uuid, new_id
from events.store.protocol import ClaimConflict, IdempotencyArg
from events.tags import TagCreated, TagDeleted, TagRenamed, TagShared
from infra.actor import Actor
from infra.errors import Conflict, Forbidden
from infra.tag_names import clean_tag_name


class Tag(NumberedAggregate):
    def __init__(self, name: str, user_id: int | None) -> None:
        self.name = name
        self.user_id = user_id
        self.deleted = False
        self.shared = False  # another user's object carries it (or did): admins only may change it

    def used_by(self, user_id: int | None) -> None:
        """`user_id` puts the tag on an object of theirs: the first user other than the creator shares it."""
        if user_id is not None and user_id != self.user_id and self.user_id is not None and not self.shared:
            self.trigger_event(TagShared, user_id=user_id)

    @property
    def created_at(self) -> datetime:
        return self.created_on

    def rename(self, name: str) -> None:
        if name != self.name:
            self.trigger_event(TagRenamed, name=name, previous_name=self.name)

    def delete(self) -> None:
        self.trigger_event(TagDeleted, name=self.name)

    def _tag_renamed(self, event: TagRenamed) -> None:
        self.name = event.name

    def _tag_deleted(self, event: TagDeleted) -> None:
        self.deleted = True

    def _tag_shared(self, event: TagShared) -> None:
        self.shared = True

    WHEN: ClassVar[EventHandlers] = {TagRenamed: _tag_renamed, TagDeleted: _tag_deleted, TagShared: _tag_shared}


def _may_change(actor: Actor, tag: Tag) -> None:
    # Another user gets 403, not 404. Tags from before accounts have no creator: admins only. Once other people's
    # objects carry the tag, renaming or deleting it changes their objects: admins only (API.md).
    if actor.is_admin:
        return
    if not actor.owns(tag.user_id):
        raise Forbidden("Only the tag's creator or an admin may change it.")
    if tag.shared:
        raise Forbidden("Other people's images or models carry this tag: only an admin may rename or delete it.")


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
