"""Answering a repeated create (same `Idempotency-Key`) with the object the first request made."""

from __future__ import annotations

from typing import TypeVar

from command.aggregate import NumberedAggregate
from command.app import CommandApp
from events.ids import split_uuid
from events.jetstream import DuplicateRequest
from infra.actor import Actor
from infra.errors import Conflict

Owned = TypeVar("Owned", bound=NumberedAggregate)  # anything created with an owner (`user_id`)


def created_again(app: CommandApp, cls: type[Owned], kind: str, actor: Actor,
                  dup: DuplicateRequest) -> tuple[Owned, int]:
    """The object the first request with this key created, and that request's sequence. A key used before for
    something else, or by someone else, is a conflict: it must never hand out another user's object."""
    for originator_id, _version in dup.events:
        split = split_uuid(originator_id)
        if split is not None and split[0] == kind:
            found = app.load(cls, kind, split[1])
            if actor.owns(getattr(found, "user_id", None)):
                return found, dup.sequence
    raise Conflict("This Idempotency-Key was used before by another user or for another kind of object: send a "
                   "new key with each new request (a key is for retrying one request).")
