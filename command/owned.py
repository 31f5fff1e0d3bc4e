"""What every owned object (param, dataset, model) shares: an owner, a public flag, and a public integer id."""

from __future__ import annotations

import re

from command.aggregate import NumberedAggregate
from infra.actor import Actor
from infra.authz import check_can_change
from infra.errors import Invalid


class OwnedAggregate(NumberedAggregate):
    # Set by each subclass's __init__ (from its Created event); declared here for the shared helpers.
    user_id: int
    public: bool
    deleted: bool
    what = "object"  # how error messages name it

    def check_can_change(self, actor: Actor) -> None:
        """Owner or admin; others get 404 for a private object and 403 for a public one (infra/authz.py)."""
        check_can_change(actor, self.user_id, self.public, self.what)


def owner_view(actor: Actor, owner_id: int) -> Actor:
    """Whose eyes decide what an object may reference: its owner's. An admin editing someone else's object
    must not let it reference things its owner could not see."""
    return actor if actor.owns(owner_id) else Actor(user_id=owner_id, role="user")


MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_name(raw: str, field: str = "body.name") -> str:
    """An object's name as stored: trimmed, not empty, no control characters."""
    name = raw.strip()
    if not name:
        raise Invalid("A name cannot be empty.", field=field)
    if len(name) > MAX_NAME:
        raise Invalid(f"A name has at most {MAX_NAME} characters.", field=field)
    if _CONTROL.search(name) or not storable(name):
        raise Invalid("A name cannot contain control characters or unpaired surrogates.", field=field)
    return name


def storable(text: str) -> bool:
    """Whether PostgreSQL text can hold it (no NUL, valid UTF-8): anything else would stop a projector."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
