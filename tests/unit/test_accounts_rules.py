"""Pure account rules: sealing personal data, claim digests, tokens, the login throttle, the session fold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from command.personal import Opener
from command.sessions import Session
from command.users import User, clean_email, clean_user_name
from events.codec import mapper
from events.ids import aggregate_uuid
from events.personal import SealBroken, blind_index, is_sealed, new_key, seal, unseal, unseal_or_none
from events.sessions import SessionEnded, SessionStarted
from events.users import UserDeleted, UserPasswordChanged, UserRegistered
from infra.errors import Invalid
from infra.passwords import check_password_policy, hash_password, verify_password
from infra.session_state import SessionState, UserState, fold_session, fold_user, session_is_live
from infra.tokens import hash_matches, new_token, parse_token, presented_token

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_sealed_value_opens_only_with_its_key_user_and_field() -> None:
    key = new_key()
    sealed = seal(key, 7, "email", "ann@example.com")
    assert is_sealed(sealed) and "ann" not in sealed
    assert unseal(key, 7, "email", sealed) == "ann@example.com"
    for wrong in ((new_key(), 7, "email"), (key, 8, "email"), (key, 7, "name")):
        with pytest.raises(SealBroken):
            unseal(wrong[0], wrong[1], wrong[2], sealed)
    assert unseal_or_none(None, 7, "email", sealed) is None
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert unseal_or_none(key, 7, "email", tampered) is None


def test_sealing_twice_gives_different_texts() -> None:
    key = new_key()
    assert seal(key, 1, "name", "ann") != seal(key, 1, "name", "ann")


def test_claim_digests_ignore_case_and_depend_on_the_server_secret() -> None:
    secret, other = b"s" * 32, b"t" * 32
    assert blind_index(secret, "email", "Ann@Example.com") == blind_index(secret, "email", "ann@example.com")
    assert blind_index(secret, "email", "ann@example.com") != blind_index(other, "email", "ann@example.com")
    assert blind_index(secret, "email", "ann") != blind_index(secret, "username", "ann")


def test_tokens_are_long_random_and_only_their_hash_is_kept() -> None:
    token, stored = new_token(123)
    number, secret = token.split(".")
    assert number == "123" and len(secret) == 43 and secret not in stored
    assert parse_token(token) == (123, secret) and hash_matches(secret, stored)
    assert not hash_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), stored)
    assert new_token(123)[0] != token


@pytest.mark.parametrize("bad", ["", "abc", "123", "123.", "0." + "a" * 43, "-1." + "a" * 43, "1." + "a" * 42,
                                 "1." + "a" * 44, "1." + "a" * 42 + "!", "99999999999999999." + "a" * 43,
                                 "1.." + "a" * 42, " 1." + "a" * 43])
def test_malformed_tokens_do_not_parse(bad: str) -> None:
    assert parse_token(bad) is None


def test_a_token_comes_from_bearer_or_the_token_header() -> None:
    assert presented_token("Bearer abc", None) == "abc"
    assert presented_token("bearer  abc ", None) == "abc"
    assert presented_token(None, "abc") == "abc"
    assert presented_token("Basic abc", None) == ""
    assert presented_token(None, None) is None


def test_passwords_are_argon2id_and_unknown_accounts_never_verify() -> None:
    stored = hash_password("a good password")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a good password")
    assert not verify_password(stored, "a bad password")
    assert not verify_password(None, "a good password")
    with pytest.raises(Invalid):
        check_password_policy("short")
    with pytest.raises(Invalid):
        check_password_policy("x" * 1025)


def test_names_and_emails_are_cleaned_or_refused() -> None:
    assert clean_user_name("  Ann   Lee ") == "Ann Lee"
    for bad in ("", "   ", "1234", "a,b", "a@b", "x" * 51, "a\x00b"):
        with pytest.raises(Invalid):
            clean_user_name(bad)
    assert clean_email(" ann@example.com ") == "ann@example.com"
    for bad in ("ann", "ann@", "@example.com", "ann@example", "a b@example.com", "a@b@example.com"):
        with pytest.raises(Invalid):
            clean_email(bad)


def _session(user_version: int = 1) -> SessionState:
    return SessionState(user_id=1, user_version=user_version, token_hash="h", started_at=NOW,
                        expires_at=NOW + timedelta(days=1), extended_at=NOW)


def test_a_password_change_ends_older_sessions_but_the_kept_one() -> None:
    user = UserState(role="user", password_changes=[(3, 10)])
    assert not session_is_live(11, _session(user_version=2), user, NOW)
    assert session_is_live(10, _session(user_version=2), user, NOW)
    assert session_is_live(12, _session(user_version=3), user, NOW)
    later = UserState(role="user", password_changes=[(3, 10), (5, None)])
    assert not session_is_live(10, _session(user_version=2), later, NOW)


def test_ended_expired_or_orphaned_sessions_are_not_live() -> None:
    user = UserState(role="user")
    assert session_is_live(1, _session(), user, NOW)
    assert not session_is_live(1, _session(), user, NOW + timedelta(days=1))
    assert not session_is_live(1, _session(), None, NOW)
    assert not session_is_live(1, _session(), UserState(role="user", deleted=True), NOW)
    ended = _session()
    ended.ended = True
    assert not session_is_live(1, ended, user, NOW)


def test_the_folds_read_the_events_the_command_side_writes() -> None:
    key = new_key()
    user = User._create(UserRegistered, id=aggregate_uuid("user", 5), name=seal(key, 5, "name", "ann"),
                        email=seal(key, 5, "email", "a@b.cd"), password_hash=seal(key, 5, "password_hash", "h"),
                        role="user")
    user.change_role("admin", by=None)
    user.change_password(seal(key, 5, "password_hash", "h2"), kept_session_id=9)
    user.delete(by=5)
    events = user.collect_events()
    assert [type(e) for e in events][-2:] == [UserPasswordChanged, UserDeleted]
    folded = fold_user(events)
    assert folded == UserState(role="admin", deleted=True, password_changes=[(3, 9)])
    assert Opener(key, 5).open("name", user.sealed_name) == "ann"
    login = Session._create(SessionStarted, id=aggregate_uuid("session", 9), user_id=5, user_version=1,
                            token_hash="h", user_agent="ua", expires_at=NOW + timedelta(hours=1))
    login.end("logout")
    events = login.collect_events()
    assert [type(e) for e in events] == [SessionStarted, SessionEnded]
    session = fold_session(events)
    assert session is not None and session.ended and session.user_id == 5


def test_stored_user_events_hold_no_plaintext() -> None:
    key = new_key()
    user = User._create(UserRegistered, id=aggregate_uuid("user", 6), name=seal(key, 6, "name", "ann-lee"),
                        email=seal(key, 6, "email", "ann@example.com"),
                        password_hash=seal(key, 6, "password_hash", hash_password("hunter2hunter2")), role="user")
    stored = mapper().to_stored_event(user.collect_events()[0])
    text = stored.state.decode()
    assert "ann" not in text and "argon2" not in text
    assert json.loads(text)["role"] == "user"
