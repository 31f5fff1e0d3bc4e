"""Personal data in events: sealed with a per-user key so that it can be erased (crypto-shredding).

Names, emails, password hashes and user agents enter events only as sealed strings: AES-256-GCM under a key that
belongs to one user, with the user id and the field's name as associated data (a sealed value cannot be moved to
another user or another field). The keys live outside the log, in a `KeyStore` (infra/keys.py); erasing a user
deletes their key, and every sealed value of theirs in the log becomes noise for good, while the events stay
readable otherwise, so audits and rebuilds still work.

Pure functions and a Protocol only: no SQL here (events/ has no web and no SQL).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Protocol

from Crypto.Cipher import AES

KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_PREFIX = "sealed:v1:"

SEALED = "[sealed]"
ERASED = "[erased]"


class SealBroken(Exception):
    """The sealed value does not open with this key (a wrong key, another field's value, or tampering)."""


class KeyStore(Protocol):
    """Where per-user keys and server-wide secrets are kept. Synchronous: the command side runs in threads."""

    def create_key(self, user_id: int) -> bytes:
        """A new random key for `user_id`, stored before it is returned (the user's key when one exists)."""
        ...

    def key(self, user_id: int) -> bytes | None:
        """The user's key, None when it never existed or was erased."""
        ...

    def forget(self, user_id: int) -> None:
        """Delete the user's key for good: every value sealed with it becomes unreadable."""
        ...

    def server_secret(self, name: str) -> bytes:
        """A server-wide random secret (created on first use, never changed), e.g. for claim subjects."""
        ...


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _context(user_id: int, field: str) -> bytes:
    return f"aidraw:{user_id}:{field}".encode()


def seal(key: bytes, user_id: int, field: str, plaintext: str) -> str:
    """`plaintext` encrypted for `user_id`'s `field`: a printable string safe to put in an event."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(_context(user_id, field))
    body, tag = cipher.encrypt_and_digest(plaintext.encode())
    return _PREFIX + base64.urlsafe_b64encode(nonce + body + tag).decode()


def unseal(key: bytes, user_id: int, field: str, sealed: str) -> str:
    """The plaintext of a value `seal` made with the same key, user and field; SealBroken otherwise."""
    if not sealed.startswith(_PREFIX):
        raise SealBroken("not a sealed value")
    try:
        raw = base64.urlsafe_b64decode(sealed[len(_PREFIX):].encode())
    except ValueError:
        raise SealBroken("not a sealed value") from None
    if len(raw) < _NONCE_BYTES + _TAG_BYTES:
        raise SealBroken("not a sealed value")
    nonce, body, tag = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:-_TAG_BYTES], raw[-_TAG_BYTES:]
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(_context(user_id, field))
    try:
        return cipher.decrypt_and_verify(body, tag).decode()
    except (ValueError, UnicodeDecodeError):
        raise SealBroken("the value does not open with this key") from None


def unseal_or_none(key: bytes | None, user_id: int, field: str, sealed: str) -> str | None:
    """The plaintext, or None when the key is gone (erased) or does not fit."""
    if key is None:
        return None
    try:
        return unseal(key, user_id, field, sealed)
    except SealBroken:
        return None


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_PREFIX)


def blind_index(secret: bytes, namespace: str, value: str) -> str:
    """A keyed digest of `value` (compared ignoring case), for claim subjects of personal values: unlike a bare
    hash, nobody without the server secret can test guesses (is alice@example.com a user?) against the log."""
    message = f"{namespace}\x00{value.casefold()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
