"""Answering a repeated create (same `Idempotency-Key`) with what the first request answered.

As Stripe does: the repeat gets the first answer, status and body, whatever happened to the object since (it
may have been changed or deleted). The object is folded from the log up to the version the first request
stored, so the body is the one first sent. Keys are scoped to the caller (command/routes/deps.py): another
user's key is a new key for them, so a repeat never tells anyone whether their body matches someone else's.
"""

from __future__ import annotations

from typing import TypeVar

from eventsourcing.application import AggregateNotFoundError

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
    """The object as the first request with this key created it (even if deleted since), and that request's
    sequence. A key used before with another request is 422; for another kind of object, a conflict. The owner
    check stays as a second guard: a key is never a way to another user's object."""
    check_same_request(dup, key)
    for originator_id, version in dup.events:
        split = split_uuid(originator_id)
        if split is not None and split[0] == kind:
            try:
                found: object = app.repository.get(originator_id, version=version)
            except AggregateNotFoundError:
                break
            if isinstance(found, cls) and actor.owns(getattr(found, "user_id", None)):
                return found, dup.sequence
    raise Conflict("This Idempotency-Key was used before for another kind of object: send a new key with each "
                   "new request (a key is for retrying one request).")
