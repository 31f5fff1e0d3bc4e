"""Sessions: log in (a token, shown once), log out, and the sliding extension of a session in use."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from command.accounts import UserView, view
from command.aggregate import NumberedAggregate
from command.app import CommandApp, retry_on_conflict
from command.personal import PersonalData
from command.users import User
from events.base import EventHandlers
from events.ids import aggregate_uuid, new_id
from events.sessions import SessionEnded, SessionExtended, SessionStarted
from infra.actor import Actor
from infra.errors import Invalid, NotFound, RateLimited, Unauthorized
from infra.passwords import verify_password
from infra.ratelimit import LoginThrottle
from infra.tokens import new_token

log = logging.getLogger("aidraw.sessions")

MAX_USER_AGENT = 300
WRONG_LOGIN = "Wrong name, email or password."


class Session(NumberedAggregate):
    def __init__(self, user_id: int, user_version: int, token_hash: str, user_agent: str,
                 expires_at: datetime) -> None:
        self.user_id = user_id
        self.user_version = user_version
        self.token_hash = token_hash
        self.sealed_user_agent = user_agent
        self.expires_at = expires_at
        self.ended = False

    def extend(self, expires_at: datetime) -> None:
        self.trigger_event(SessionExtended, expires_at=expires_at)

    def end(self, reason: str) -> None:
        self.trigger_event(SessionEnded, reason=reason)

    def _session_extended(self, event: SessionExtended) -> None:
        self.expires_at = event.expires_at

    def _session_ended(self, event: SessionEnded) -> None:
        self.ended = True

    WHEN: ClassVar[EventHandlers] = {SessionExtended: _session_extended, SessionEnded: _session_ended}


def _account(app: CommandApp, personal: PersonalData, name: str | None, email: str | None
             ) -> tuple[User | None, str | None]:
    """The live account a login names, and its password hash; (None, None) for no such account."""
    claim = personal.name_claim(name, 0) if name is not None else personal.email_claim(email or "", 0)
    owner = app.event_log.read_claim(claim.subject)
    if owner is None or not owner.isdigit():
        return None, None
    try:
        user = app.load(User, "user", int(owner))
    except NotFound:
        return None, None
    return user, personal.opener(user.number).open("password_hash", user.sealed_password_hash)


def log_in(app: CommandApp, personal: PersonalData, throttle: LoginThrottle, *, name: str | None,
           email: str | None, password: str, address: str, user_agent: str
           ) -> tuple[Session, str, UserView, int]:
    """(the session, its token, the user, the stream sequence). Unknown account and wrong password are the
    same answer after the same work (a dummy hash is verified)."""
    if (name is None) == (email is None):
        raise Invalid("Log in with either `name` or `email` (one of them), and `password`.", field="body")
    user, password_hash = _account(app, personal, name, email)
    # An account's failures count once whichever spelling (name, email, any case) they came by, and with wrong
    # `old_password`s (command/accounts.py); an unknown name or email counts on its own.
    account = f"#{user.number}" if user is not None else (f"name:{name}" if name is not None else f"email:{email}")
    wait = throttle.retry_after(account, address)
    if wait:
        raise RateLimited("Too many failed logins; wait before trying again.", wait)
    if not verify_password(password_hash, password) or user is None:
        throttle.failed(account, address)
        raise Unauthorized(WRONG_LOGIN)
    throttle.succeeded(account, address)
    number = new_id()
    token, token_hash = new_token(number)
    expires_at = datetime.now(UTC) + timedelta(seconds=app.settings.session_ttl_s)
    session = Session._create(
        SessionStarted, id=aggregate_uuid("session", number), user_id=user.number, user_version=user.version,
        token_hash=token_hash, expires_at=expires_at,
        user_agent=personal.seal(user.number, "user_agent", user_agent[:MAX_USER_AGENT]),
    )
    seq = app.store(session)
    return session, token, view(personal, user), seq


def log_out(app: CommandApp, actor: Actor, number: int) -> int:
    """End a session: one's own, or any for an admin. Another user's session is unknown (404)."""

    def attempt() -> int:
        session = app.load(Session, "session", number)
        if session.ended or not (actor.owns(session.user_id) or actor.is_admin):
            raise NotFound(f"No session with id {number}.")
        session.end("logout")
        return app.store(session)

    return retry_on_conflict(attempt)


class SessionExtender:
    """Moves a session's expiry forward after use; at most one extension per session in flight, and a failure
    is only logged (the request that triggered it has been answered already)."""

    def __init__(self, app: CommandApp) -> None:
        self.app = app
        self._busy: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, number: int) -> None:
        with self._lock:
            if number in self._busy:
                return
            self._busy.add(number)
        try:
            session: Any = self.app.repository.get(aggregate_uuid("session", number))
            refresh = timedelta(seconds=self.app.settings.session_refresh_s)
            now = datetime.now(UTC)
            if isinstance(session, Session) and not session.ended and now - session.modified_on >= refresh:
                session.extend(now + timedelta(seconds=self.app.settings.session_ttl_s))
                self.app.store(session)
        except Exception as exc:  # never fail the caller for an extension
            log.warning("session not extended", extra={"session_id": number, "error": type(exc).__name__})
        finally:
            with self._lock:
                self._busy.discard(number)
