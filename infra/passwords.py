"""Password hashing (argon2id) and the password policy.

A login for an unknown account verifies the password against a dummy hash made with the same parameters, so a
wrong password and an unknown name take the same time (the hash dominates: tens of milliseconds).
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from infra.errors import Invalid

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps a request from hashing megabytes

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)


def check_password_policy(password: str, field: str = "body.password") -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.", field=field)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("not a password: verified against when an account does not exist")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; with no hash (unknown account) it spends the same time and says no."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def warm_up() -> None:
    """Make the dummy hash at start, so the first unknown-account login is not the slow one."""
    _dummy_hash()
