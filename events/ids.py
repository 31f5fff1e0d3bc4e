"""Identifiers: the public integer id of an object, its aggregate UUID, and its subject in the log.

Public ids are positive integers below 2**53 (exact in JSON), unique per collection and never reused:
milliseconds since 2025-01-01 in the high bits and 12 random bits below. A new aggregate is appended with
expected subject sequence 0, so an id that somehow exists already is refused by the log itself and the
command retries with another; a deleted object's subject keeps its events, so its id is never given again.

The aggregate UUID packs the collection's kind code and the integer id, so the subject of any event can be
derived from the event alone: `aidraw.<kind>.<id>`. UUIDs that do not carry a kind code (the library's own
contract tests use random ones) live under `aidraw.es.<hex>`.
"""

from __future__ import annotations

import secrets
import threading
import time
from uuid import UUID

# Kind codes are part of the stored data: never renumber, only append.
KINDS: dict[str, int] = {
    "tag": 1,
    "user": 2,
    "session": 3,
    "image": 4,
    "model": 5,
    "task": 6,
    "param": 7,
    "dataset": 8,
    "choice": 9,
    "server": 10,
    "likes": 11,  # one per user: the images they like
    "user_tasks": 12,  # one per user: their unfinished tasks (the per-user cap)
}
KIND_NAMES: dict[int, str] = {code: name for name, code in KINDS.items()}

_MARK = 0xA1D4_0000_0000  # high 48 bits of the UUID's upper half mark an aidraw aggregate id
_EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MAX_ID = 2**53 - 1


_last_id = 0
_id_lock = threading.Lock()


def new_id() -> int:
    """A fresh public id: time-ordered, positive, below 2**53, strictly increasing within a process (bulk loads
    make thousands a millisecond); processes differ by the random low bits, and the log refuses a clash."""
    global _last_id
    ms = int(time.time() * 1000) - _EPOCH_MS
    candidate = (ms << 12) | secrets.randbits(12)
    with _id_lock:
        _last_id = max(candidate, _last_id + 1)
        return _last_id


def aggregate_uuid(kind: str, number: int) -> UUID:
    if not 0 < number <= MAX_ID:
        raise ValueError(f"id {number} is out of range")
    return UUID(int=(((_MARK << 16) | KINDS[kind]) << 64) | number)


def split_uuid(uuid: UUID) -> tuple[str, int] | None:
    """(kind, id) for an aidraw aggregate UUID, None for any other UUID."""
    high, low = uuid.int >> 64, uuid.int & (2**64 - 1)
    if high >> 16 != _MARK:
        return None
    kind = KIND_NAMES.get(high & 0xFFFF)
    if kind is None:
        return None
    return kind, low


def token(kind: str) -> str:
    """The subject token of a kind (`aidraw.<token>.<id>`)."""
    if kind not in KINDS:
        raise KeyError(kind)
    return kind


def subject_for(prefix: str, uuid: UUID) -> str:
    split = split_uuid(uuid)
    if split is None:
        return f"{prefix}.es.{uuid.hex}"
    kind, number = split
    return f"{prefix}.{kind}.{number}"


def uuid_for_subject(prefix: str, subject: str) -> UUID:
    parts = subject.split(".")
    if len(parts) != 3 or parts[0] != prefix:
        raise ValueError(f"not an event subject: {subject}")
    if parts[1] == "es":
        return UUID(hex=parts[2])
    return aggregate_uuid(parts[1], int(parts[2]))


def is_event_subject(prefix: str, subject: str) -> bool:
    parts = subject.split(".")
    return len(parts) == 3 and parts[0] == prefix and (parts[1] == "es" or parts[1] in KINDS)
