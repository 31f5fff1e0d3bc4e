"""User commands: sign up, change, delete (and erase). Login and logout are in command/sessions.py.

Names and emails are unique ignoring case through claims appended in the same atomic batch as the event that
needs them, so two concurrent sign-ups with one email make one account and one 409.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from command.app import CommandApp, retry_on_conflict
from command.personal import PersonalData
from command.users import User, clean_email, clean_user_name
from events.ids import aggregate_uuid, new_id
from events.store.protocol import Claim, ClaimConflict, DuplicateRequest, IdempotencyArg
from events.users import ROLES, UserRegistered
from infra.actor import Actor
from infra.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unauthorized
from infra.passwords import check_password_policy, hash_password, verify_password
from infra.ratelimit import LoginThrottle


@dataclass(frozen=True)
class UserView:
    """A user with its personal fields opened (None once erased)."""

    id: int
    name: str | None
    email: str | None
    role: str
    user: User


@dataclass(frozen=True)
class UserChanges:
    name: str | None = None
    email: str | None = None
    password: str | None = None
    old_password: str | None = None
    role: str | None = None


def view(personal: PersonalData, user: User) -> UserView:
    opener = personal.opener(user.number)
    return UserView(user.number, opener.open("name", user.sealed_name), opener.open("email", user.sealed_email),
                    user.role, user)


def shown_name(app: CommandApp, personal: PersonalData, number: int) -> str | None:
    """A user's name as others see it beside their objects, from the user's aggregate: None once the user is
    deleted or erased."""
    try:
        user = app.load(User, "user", number)
    except NotFound:
        return None
    return personal.opener(number).open("name", user.sealed_name)


def _taken(claim: ClaimConflict, personal: PersonalData, number: int, name: str | None) -> Conflict:
    if name is not None and claim.subject == personal.name_claim(name, number).subject:
        return Conflict("That user name is taken (names are unique, ignoring case).")
    return Conflict("That email address belongs to another account.")


def register_user(app: CommandApp, personal: PersonalData, actor: Actor, name: str, email: str, password: str,
                  role: str = "user", *, trusted: bool = False, idempotency_key: IdempotencyArg = None
                  ) -> tuple[UserView, int]:
    """Sign up (open while AIDRAW_SIGNUP_OPEN), or an admin creating a user. `trusted`: the command line."""
    if not (trusted or app.settings.signup_open or actor.is_admin):
        if actor.is_anonymous:
            raise Unauthorized("Sign-up is closed: an admin creates accounts.")
        raise Forbidden("Sign-up is closed: only admins create accounts.")
    if role != "user" and not trusted:
        raise Forbidden("New accounts are users; an admin changes roles afterwards.")
    name, email = clean_user_name(name), clean_email(email)
    check_password_policy(password)
    password_hash = hash_password(password)

    def attempt() -> tuple[UserView, int]:
        number = new_id()
        sealer = personal.sealer(number)
        user = User._create(UserRegistered, id=aggregate_uuid("user", number), role=role,
                            name=sealer.seal("name", name), email=sealer.seal("email", email),
                            password_hash=sealer.seal("password_hash", password_hash))
        claims = [personal.name_claim(name, number), personal.email_claim(email, number)]
        try:
            seq = app.store(user, claims=claims, idempotency_key=idempotency_key)
        except (IntegrityError, DuplicateRequest) as refused:
            # Nothing was stored: the key guards nothing. (After an unknown outcome the key must stay.)
            personal.keys.forget(number)
            if isinstance(refused, ClaimConflict):
                raise _taken(refused, personal, number, name) from None
            raise
        return UserView(number, name, email, role, user), seq

    return retry_on_conflict(attempt)


def _may_manage(actor: Actor, number: int) -> None:
    if not (actor.owns(number) or actor.is_admin):
        raise Forbidden("Only the user themself or an admin may change or delete an account.")


def _check_old_password(personal: PersonalData, user: User, old_password: str | None,
                        throttle: LoginThrottle, address: str) -> None:
    if old_password is None:
        raise Invalid("Changing your own password or email needs your current password as `old_password`.",
                      field="body.old_password")
    account = f"#{user.number}"
    wait = throttle.retry_after(account, address)
    if wait:
        raise RateLimited("Too many wrong passwords; wait before trying again.", wait)
    stored = personal.opener(user.number).open("password_hash", user.sealed_password_hash)
    if not verify_password(stored, old_password):
        throttle.failed(account, address)
        raise Forbidden("The old password is wrong.")


def change_user(app: CommandApp, personal: PersonalData, actor: Actor, number: int, changes: UserChanges,
                throttle: LoginThrottle, address: str) -> tuple[UserView, int]:
    """Name, email, password (one's own email or password needs the current password) and role (admins, never
    their own)."""
    _may_manage(actor, number)
    if changes.role is not None:
        if not actor.is_admin:
            raise Forbidden("Only an admin may change roles.")
        if actor.owns(number):
            raise Forbidden("Nobody can change their own role.")
        if changes.role not in ROLES:
            raise Invalid(f"role is one of {', '.join(ROLES)}.", field="body.role")
    if changes.old_password is not None and changes.password is None and changes.email is None:
        raise Invalid("`old_password` goes with a new `password` or `email`.", field="body.old_password")
    name = clean_user_name(changes.name) if changes.name is not None else None
    email = clean_email(changes.email) if changes.email is not None else None
    password_hash = None
    if changes.password is not None:
        check_password_policy(changes.password)
        password_hash = hash_password(changes.password)

    def attempt() -> tuple[UserView, int]:
        user = app.load(User, "user", number)
        before = view(personal, user)
        # One's own password or email (the way to reset the password) needs the current password: a stolen
        # session must not be enough to take the account over.
        new_email = email is not None and email != before.email
        if actor.owns(number) and (changes.password is not None or new_email):
            _check_old_password(personal, user, changes.old_password, throttle, address)
        claims: list[Claim] = []
        releases: list[Claim] = []
        if name is not None and name != before.name:
            user.rename(personal.seal(number, "name", name))
            _swap(claims, releases, personal.name_claim, before.name, name, number)
        if email is not None and email != before.email:
            user.change_email(personal.seal(number, "email", email))
            _swap(claims, releases, personal.email_claim, before.email, email, number)
        if password_hash is not None:
            kept = actor.session_id if actor.owns(number) else None
            user.change_password(personal.seal(number, "password_hash", password_hash), kept)
        if changes.role is not None:
            user.change_role(changes.role, by=actor.user_id)
        try:
            seq = app.store(user, claims=claims, releases=releases)
        except ClaimConflict as conflict:
            raise _taken(conflict, personal, number, name) from None
        return UserView(number, name or before.name, email or before.email, user.role, user), seq

    return retry_on_conflict(attempt)


def _swap(claims: list[Claim], releases: list[Claim], make: Callable[[str, int], Claim], old: str | None,
          new: str, number: int) -> None:
    """Claim the new value and release the old one, unless only its case changed (the claim stays)."""
    if old is not None and old.casefold() == new.casefold():
        return
    claims.append(make(new, number))
    if old is not None:
        releases.append(make(old, number))


def delete_user(app: CommandApp, personal: PersonalData, actor: Actor, number: int) -> int:
    """Delete the account (its sessions end at once, its name and email become free), then erase it: destroy
    its key, so its name, email and password hash in the log are unreadable for good. A deletion whose
    erasure did not finish (the key store failed) is finished by the next DELETE."""
    _may_manage(actor, number)

    def attempt() -> int:
        try:
            user: Any = app.repository.get(aggregate_uuid("user", number))
        except AggregateNotFoundError:
            raise NotFound(f"No user with id {number}.") from None
        if not isinstance(user, User) or user.erased:
            raise NotFound(f"No user with id {number}.")
        seq = 0
        if not user.deleted:
            opened = view(personal, user)
            releases = []
            if opened.name is not None:
                releases.append(personal.name_claim(opened.name, number))
            if opened.email is not None:
                releases.append(personal.email_claim(opened.email, number))
            user.delete(by=actor.user_id)
            seq = app.store(user, releases=releases)
        personal.keys.forget(number)
        user.erase()
        return app.store(user) or seq

    return retry_on_conflict(attempt)
