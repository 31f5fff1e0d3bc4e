"""Uniqueness claims: subjects in the log that at most one object holds at a time (tag names, emails...)."""

from __future__ import annotations

import hashlib

from events.store.protocol import Claim


def claim(prefix: str, namespace: str, value: str, owner: str) -> Claim:
    """Claim `value` in `namespace` (compared case-insensitively) for `owner`. The subject carries a hash,
    never the value: emails and names do not appear in subject names."""
    digest = hashlib.sha256(value.casefold().encode()).hexdigest()
    return Claim(subject=f"{prefix}.unique.{namespace}.{digest}", owner=owner)
