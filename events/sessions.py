"""Sessions: logins. A session's token is never stored: only the sha256 of its secret part."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from events.base import Changed, Created


class SessionStarted(Created):
    """`user_version` is the version of the user's account the password was checked against: a later password
    change (a higher version) ends this session. `user_agent` is sealed with the user's key."""

    sealed_fields: ClassVar[tuple[str, ...]] = ("user_agent",)
    secret_fields: ClassVar[tuple[str, ...]] = ("token_hash",)
    user_id: int
    user_version: int
    token_hash: str
    user_agent: str
    expires_at: datetime


class SessionExtended(Changed):
    expires_at: datetime


class SessionEnded(Changed):
    reason: str  # "logout"
