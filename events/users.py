"""Users: accounts. Names, emails and password hashes are sealed (events/personal.py), never plaintext.

`sealed_fields` names the fields that hold sealed values (the audit trail masks them); the values are sealed
with the user's own key and the field's name as context.
"""

from __future__ import annotations

from typing import ClassVar

from events.base import Changed, Created, Deleted

ROLES = ("user", "admin")


class UserRegistered(Created):
    sealed_fields: ClassVar[tuple[str, ...]] = ("name", "email", "password_hash")
    name: str
    email: str
    password_hash: str
    role: str


class UserRenamed(Changed):
    sealed_fields: ClassVar[tuple[str, ...]] = ("name",)
    name: str


class UserEmailChanged(Changed):
    sealed_fields: ClassVar[tuple[str, ...]] = ("email",)
    email: str


class UserPasswordChanged(Changed):
    """Ends every session of the user that was opened against an older version of the account, except
    `kept_session_id` (the session that made the change; None when an admin reset it)."""

    sealed_fields: ClassVar[tuple[str, ...]] = ("password_hash",)
    password_hash: str
    kept_session_id: int | None


class UserRoleChanged(Changed):
    role: str
    previous_role: str
    by: int | None  # the admin who changed it (None: the command line)


class UserDeleted(Deleted):
    """The account is gone: its sessions end, its name and email are free again."""

    by: int | None


class UserErased(Changed):
    """The user's key was destroyed: every sealed value of theirs in the log is unreadable from now on."""
