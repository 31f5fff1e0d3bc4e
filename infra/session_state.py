"""A session's and its user's state, folded straight from their events in the log.

The token check reads these on every authenticated request instead of a read model, so a logout, a password
change or a deleted account takes effect on the very next request, with no projection lag. A small fold, not
the command side's aggregates: infra/ must not import command/.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.sessions import SessionEnded, SessionExtended, SessionStarted
from events.users import UserDeleted, UserPasswordChanged, UserRegistered, UserRoleChanged


@dataclass
class SessionState:
    user_id: int
    user_version: int
    token_hash: str
    started_at: datetime
    expires_at: datetime
    extended_at: datetime
    ended: bool = False


@dataclass
class UserState:
    role: str
    deleted: bool = False
    # (the account version of each password change, the session it kept)
    password_changes: list[tuple[int, int | None]] = field(default_factory=list)


def fold_session(events: Iterable[Any]) -> SessionState | None:
    state: SessionState | None = None
    for event in events:
        if isinstance(event, SessionStarted):
            state = SessionState(event.user_id, event.user_version, event.token_hash, event.timestamp,
                                 event.expires_at, event.timestamp)
        elif state is None:
            continue
        elif isinstance(event, SessionExtended):
            state.expires_at, state.extended_at = event.expires_at, event.timestamp
        elif isinstance(event, SessionEnded):
            state.ended = True
    return state


def fold_user(events: Iterable[Any]) -> UserState | None:
    state: UserState | None = None
    for event in events:
        if isinstance(event, UserRegistered):
            state = UserState(role=event.role)
        elif state is None:
            continue
        elif isinstance(event, UserRoleChanged):
            state.role = event.role
        elif isinstance(event, UserPasswordChanged):
            state.password_changes.append((event.originator_version, event.kept_session_id))
        elif isinstance(event, UserDeleted):
            state.deleted = True
    return state


def session_is_live(session_id: int, session: SessionState, user: UserState | None, now: datetime) -> bool:
    """Not ended, not expired, its user still there, and no later password change ended it."""
    if session.ended or session.expires_at <= now or user is None or user.deleted:
        return False
    return all(version <= session.user_version or kept == session_id for version, kept in user.password_changes)
