"""The one authorisation model: anonymous, user, owner, admin.

Queries put `visible_sql` inside their WHERE clause, so lists, totals and details apply the same rule. Commands
call `check_can_change` after loading an aggregate. Another user's private object is answered as unknown (404),
never as forbidden, so its existence does not leak.
"""

from __future__ import annotations

from typing import Any

from infra.actor import Actor
from infra.errors import Forbidden, NotFound


def can_see(actor: Actor, owner_id: int | None, public: bool) -> bool:
    return public or actor.is_admin or actor.owns(owner_id)


def visible_sql(actor: Actor, owner_col: str = "user_id", public_col: str = "public") -> tuple[str, list[Any]]:
    """A WHERE fragment selecting what `actor` may see."""
    if actor.is_admin:
        return "true", []
    if actor.user_id is None:
        return f"{public_col}", []
    return f"({public_col} OR {owner_col} = %s)", [actor.user_id]


def check_can_change(actor: Actor, owner_id: int | None, public: bool, what: str) -> None:
    """Owner or admin may change; others get 404 for a private object and 403 for a public one."""
    if actor.is_admin or actor.owns(owner_id):
        return
    if not public:
        raise NotFound(f"No {what} with that id.")
    raise Forbidden(f"Only the owner of this {what} or an admin may change it.")
