"""Uniqueness claims on the log (DESIGN.md: "Uniqueness ... is a claim on a subject").

A claim subject such as `aidraw.unique.tagname.<sha256 hex>` holds claim messages only. Its state is its last
message: header `Aidraw-Claim: held` (body = the owner) means HELD; no message, or `Aidraw-Claim: released`,
means FREE. Claims and releases are appended in the same atomic batch as the events that need them, with an
expected last subject sequence, so two commands can never both take one name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

CLAIM_HEADER = "Aidraw-Claim"
HELD = "held"
RELEASED = "released"


@dataclass(frozen=True)
class Claim:
    subject: str  # e.g. claim_subject("aidraw", "tagname", "cats")
    owner: str  # who holds it, e.g. the aggregate's subject or id


def claim_subject(prefix: str, kind: str, value: str) -> str:
    """The claim subject for a unique `value` of a `kind` (hashed: values may hold any character, and an
    email address must not appear in a subject)."""
    digest = hashlib.sha256(value.encode()).hexdigest()
    return f"{prefix}.unique.{kind}.{digest}"


@dataclass(frozen=True)
class RequestKey:
    """An Idempotency-Key with a digest of the request it came with (an HMAC under a server secret, never the
    request itself). The digest is kept in the key's record, so a repeat with another request is told apart."""

    key: str
    request: str | None = None


IdempotencyArg = str | RequestKey | None


def idempotency_subject(prefix: str, key: str) -> str:
    """Where the record of an idempotency key lives (forever, past the duplicate window)."""
    return f"{prefix}.idem.{hashlib.sha256(key.encode()).hexdigest()}"
