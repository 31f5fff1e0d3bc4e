"""Small HTTP helpers shared by the command and query routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Response

SEQUENCE_HEADER = "X-Event-Sequence"


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def written(response: Response, sequence: int) -> None:
    """Tell the caller (and the read-your-writes middleware) which stream sequence the command wrote."""
    if sequence:
        response.headers[SEQUENCE_HEADER] = str(sequence)


# Path ids: positive and exact in JSON; anything else is an unknown id, never a database error.
ObjectId = Annotated[int, Path(ge=1, le=2**53 - 1, description="Object id")]
