"""Users: the aggregate (its rules) and the field rules. The handlers are in command/accounts.py."""

from __future__ import annotations

import re
from datetime import datetime
from typing import ClassVar

from command.aggregate import NumberedAggregate
from events.base import EventHandlers
from events.users import (
    UserDeleted,
    UserEmailChanged,
    UserErased,
    UserPasswordChanged,
    UserRenamed,
    UserRoleChanged,
)
from infra.errors import Invalid

MAX_USER_NAME = 50
MAX_EMAIL = 254
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def clean_user_name(raw: str, field: str = "body.name") -> str:
    """A user name as stored: trimmed, inner whitespace collapsed; not only digits (`user=` filters take ids),
    no commas (a comma separates alternatives in filters), no `@` (it would read as an email)."""
    name = " ".join(raw.split())
    if not name:
        raise Invalid("A user name cannot be empty.", field=field)
    if len(name) > MAX_USER_NAME:
        raise Invalid(f"A user name has at most {MAX_USER_NAME} characters.", field=field)
    if "," in name or "@" in name or _CONTROL.search(name):
        raise Invalid("A user name cannot contain commas, '@' or control characters.", field=field)
    if name.isdigit():
        raise Invalid("A user name cannot be only digits (it would read as a user id in filters).", field=field)
    return name


def clean_email(raw: str, field: str = "body.email") -> str:
    email = raw.strip()
    if len(email) > MAX_EMAIL or not _EMAIL.match(email) or _CONTROL.search(email):
        raise Invalid("Not an email address (name@domain.tld, at most 254 characters).", field=field)
    return email


class User(NumberedAggregate):
    """Personal fields are kept sealed, as the events carry them; command/personal.py opens them."""

    def __init__(self, name: str, email: str, password_hash: str, role: str) -> None:
        self.sealed_name = name
        self.sealed_email = email
        self.sealed_password_hash = password_hash
        self.role = role
        self.deleted = False
        self.erased = False

    @property
    def created_at(self) -> datetime:
        return self.created_on

    def rename(self, sealed_name: str) -> None:
        self.trigger_event(UserRenamed, name=sealed_name)

    def change_email(self, sealed_email: str) -> None:
        self.trigger_event(UserEmailChanged, email=sealed_email)

    def change_password(self, sealed_hash: str, kept_session_id: int | None) -> None:
        self.trigger_event(UserPasswordChanged, password_hash=sealed_hash, kept_session_id=kept_session_id)

    def change_role(self, role: str, by: int | None) -> None:
        if role != self.role:
            self.trigger_event(UserRoleChanged, role=role, previous_role=self.role, by=by)

    def delete(self, by: int | None) -> None:
        self.trigger_event(UserDeleted, by=by)

    def erase(self) -> None:
        self.trigger_event(UserErased)

    def _user_renamed(self, event: UserRenamed) -> None:
        self.sealed_name = event.name

    def _user_email_changed(self, event: UserEmailChanged) -> None:
        self.sealed_email = event.email

    def _user_password_changed(self, event: UserPasswordChanged) -> None:
        self.sealed_password_hash = event.password_hash

    def _user_role_changed(self, event: UserRoleChanged) -> None:
        self.role = event.role

    def _user_deleted(self, event: UserDeleted) -> None:
        self.deleted = True

    def _user_erased(self, event: UserErased) -> None:
        self.erased = True

    WHEN: ClassVar[EventHandlers] = {
        UserRenamed: _user_renamed,
        UserEmailChanged: _user_email_changed,
        UserPasswordChanged: _user_password_changed,
        UserRoleChanged: _user_role_changed,
        UserDeleted: _user_deleted,
        UserErased: _user_erased,
    }
