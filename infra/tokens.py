"""Session tokens: `<session id>.<secret>`, the secret 32 random bytes as 43 base64url characters (256 bits).

Only sha256(secret) is stored (in the SessionStarted event); a token is shown once, when the session starts.
The id part lets a request find its session with one read of the log; the secret proves it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from events.ids import MAX_ID

_TOKEN = re.compile(r"^([1-9][0-9]{0,15})\.([A-Za-z0-9_-]{43})$")


def new_token(session_id: int) -> tuple[str, str]:
    """(token, the hash to store)."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return f"{session_id}.{secret}", token_hash(secret)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[int, str] | None:
    """(session id, secret) of a well-formed token, None otherwise."""
    found = _TOKEN.match(token)
    if found is None or int(found.group(1)) > MAX_ID:
        return None
    return int(found.group(1)), found.group(2)


def hash_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(secret), stored_hash)


def presented_token(authorization: str | None, token_header: str | None) -> str | None:
    """The token a request carries: `Authorization: Bearer <t>` or the original frontend's `token: <t>`.
    An Authorization header of another scheme gives "" (present but unusable)."""
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""
    if token_header is not None:
        return token_header.strip()
    return None
