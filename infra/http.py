"""Small HTTP helpers shared by the command and query routes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Response
from pydantic import BeforeValidator

SEQUENCE_HEADER = "X-Event-Sequence"

# How a boolean is spelled where it arrives as text (a list filter, an upload's form field), in any case.
BOOL_SPELLINGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False,
                  "off": False}


def read_bool(raw: str) -> bool | None:
    """The boolean `raw` spells (see BOOL_SPELLINGS), None when it spells none."""
    return BOOL_SPELLINGS.get(raw.lower())


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def written(response: Response, sequence: int) -> None:
    """Tell the caller (and the read-your-writes middleware) which stream sequence the command wrote."""
    if sequence:
        response.headers[SEQUENCE_HEADER] = str(sequence)


_PLAIN_ID = re.compile(r"[1-9][0-9]{0,15}")


def _plain_digits(value: Any) -> Any:
    """An id in a path is written as the API writes it: `12`, not `012`, `+12`, ` 12` or `12.0`."""
    if isinstance(value, str) and not _PLAIN_ID.fullmatch(value):
        raise ValueError("an id is a positive integer in plain digits, as the API gives it")
    return value


# Path ids: positive and exact in JSON; anything else is 422, never a database error.
ObjectId = Annotated[int, Path(ge=1, le=2**53 - 1, description="Object id"), BeforeValidator(_plain_digits)]
