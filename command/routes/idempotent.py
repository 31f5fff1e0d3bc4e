"""Answering a repeated create (same `Idempotency-Key`) with the object the first request made."""

from __future__ import annotations

from typing import TypeVar

from command.aggregate import NumberedAggregate
from command.app import CommandApp
from events.ids import split_uuid
from events.store.protocol import DuplicateRequest, RequestKey
from infra.actor import Actor
from infra.errors import Conflict, Invalid

Owned = TypeVar("Owned", bound=NumberedAggregate)  # anything created with an owner (`user_id`)


def check_same_request(dup: DuplicateRequest, key: RequestKey | None) -> None:
    """A key repeated with another request (another body, another route) is 422: keys are for retries."""
    if not dup.same_request(key.request if key is not None else None):
        raise Invalid("This Idempotency-Key came with a different request before: a key is for retrying one "
                      "request exactly; send a new key with a new request.", field="header.Idempotency-Key")


def created_again(app: CommandApp, cls: type[Owned], kind: str, actor: Actor, dup: DuplicateRequest,
                  key: RequestKey | None) -> tuple[Owned, int]:
    """The object the first request with this key created, and that request's sequence. A key used before with
    another request is 422; used for something else, or by someone else, a conflict: it must never hand out
    another user's object."""
    check_same_request(dup, key)
    for originator_id, _version in dup.events:
        split = split_uuid(originator_id)
        if split is not None and split[0] == kind:
            found = app.load(cls, kind, split[1])
            if actor.owns(getattr(found, "user_id", None)):
                return found, dup.sequence
    raise Conflict("This Idempotency-Key was used before by another user or for another kind of object: send a "
                   "new key with each new request (a key is for retrying one request).")
