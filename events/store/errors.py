"""The event store's exceptions beyond eventsourcing's own (all are PersistenceError subclasses)."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import IntegrityError, OperationalError, PersistenceError


class OutcomeUnknown(PersistenceError):
    """No answer came in time: the write may or may not have been stored.

    Do not retry blindly: re-read the aggregate (or retry with the same idempotency key) to find out. Raised
    when the wait for the answer runs out, and at once when the connection drops while the write is under way.
    """


class EventLogUnavailable(OperationalError):
    """The event log cannot be reached just now (NATS down or restarting): nothing was stored; retry later."""


class ClaimConflict(IntegrityError):
    """A uniqueness claim is held by another owner; nothing was stored."""

    def __init__(self, subject: str, owner: str) -> None:
        super().__init__(f"{subject} is already claimed by another owner")
        self.subject = subject
        self.owner = owner  # the current holder


class DuplicateRequest(PersistenceError):
    """This idempotency key was used before; nothing was stored this time.

    `events` lists the (originator id, version) pairs the first request stored, `sequence` is the stream
    sequence of the first request's idempotency record, `request` the digest of the first request (None when it
    had none).
    """

    def __init__(self, events: list[tuple[UUID, int]], sequence: int, request: str | None = None) -> None:
        super().__init__(f"request already handled (idempotency record at sequence {sequence})")
        self.events = events
        self.sequence = sequence
        self.request = request

    def same_request(self, request: str | None) -> bool:
        """Whether a repeat carrying `request` asks what the first one asked (unknown counts as the same)."""
        return self.request is None or request is None or self.request == request
