"""What each list parameter means, and how one of its values is read.

A filter here only reads values (a malformed one raises ValueError, which the parser turns into a 422 naming
the parameter); the SQL for each filter is built in query/engine.py, the one place that writes list SQL.
Collections (query/collections.py) say which parameter names map to which filter.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from infra.http import read_bool
from infra.schemas_servers import SERVER_STATUSES
from query.dates import DayRange, parse_date

MAX_ID = 2**53 - 1
MAX_DIGITS = 20  # longer digit strings are no id, and converting thousands of digits is refused (or slow)
MAX_TEXT = 200


def read_id(raw: str) -> int:
    """Plain ASCII digits, nothing around them: ' 5' (a space, or an unencoded '+') is not an id."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_DIGITS or not 0 < int(raw) <= MAX_ID:
        raise ValueError(f"{raw!r} is not an id (a positive integer below 2^53, in plain digits)")
    return int(raw)


def read_text(raw: str) -> str:
    text = raw
    if text != text.strip():
        raise ValueError(f"{raw!r} begins or ends with a space (an unencoded + arrives as a space: send it as %2B)")
    if len(text) > MAX_TEXT:
        raise ValueError(f"a value has at most {MAX_TEXT} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("control characters are not allowed")
    return text


class Filter:
    """Base of the filters; `read` turns one value (one alternative of a comma list) into what SQL needs."""

    def read(self, raw: str) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class OwnedBy(Filter):
    """`user=ID`: owned by that user."""

    column: str = "user_id"

    def read(self, raw: str) -> int:
        return read_id(raw)


@dataclass(frozen=True)
class Tagged(Filter):
    """`tag=NAME|ID`: carrying that tag. All-digit values are ids (a tag name is never all digits); names
    compare as stored names do (NFKC, ignoring case: infra/tag_names.py), so they are kept normalised, lowered."""

    column: str = "tag_ids"

    def read(self, raw: str) -> int | str:
        text = read_text(raw)
        if text.isascii() and text.isdigit():
            return read_id(text)
        return unicodedata.normalize("NFKC", text).lower()


@dataclass(frozen=True)
class Flag(Filter):
    """`public=true|false` (also 1|0, yes|no, on|off; any case)."""

    column: str = "public"

    def read(self, raw: str) -> bool:
        value = read_bool(raw)
        if value is None:
            raise ValueError(f"{raw!r} is not true or false (nor 1/0, yes/no, on/off)")
        return value


@dataclass(frozen=True)
class CreatedOn(Filter):
    """`date=...` (query/dates.py): created on one of those UTC days."""

    column: str = "created_at"

    def read(self, raw: str) -> DayRange:
        return parse_date(raw)  # keeps a trailing space: it is the unencoded '+'


@dataclass(frozen=True)
class OneOf(Filter):
    """`status=`, `type=`, `base_model=`: one of a fixed set of values (case-insensitive on input)."""

    column: str
    allowed: tuple[str, ...]

    def read(self, raw: str) -> str:
        wanted = raw.lower()
        for value in self.allowed:
            if value.lower() == wanted:
                return value
        raise ValueError(f"{raw!r} is not one of {', '.join(self.allowed)}")


@dataclass(frozen=True)
class LiveStatus(Filter):
    """servers: `status=online|busy|draining|offline`, the live status (infra/schemas_servers.live_status): the
    log's drain flag joined with the heartbeats. Parsed without them; the route joins this process's heartbeats
    in (`alive`: the ids of live runners, `busy`: those of them running tasks) before the query runs."""

    draining: str = "draining"  # the drain flag's column
    allowed: tuple[str, ...] = SERVER_STATUSES
    alive: frozenset[int] | None = None
    busy: frozenset[int] = frozenset()

    def read(self, raw: str) -> str:
        return OneOf("status", self.allowed).read(raw)


@dataclass(frozen=True)
class Contains(Filter):
    """`q=text`: any of the columns contains the text, ignoring case."""

    columns: tuple[str, ...]

    def read(self, raw: str) -> str:
        text = read_text(raw)
        if not text:
            raise ValueError("empty search text")
        return text


@dataclass(frozen=True)
class LikedBy(Filter):
    """images: `like=USER`: liked by that user (likes are public)."""

    likes: str = "rm.image_likes"

    def read(self, raw: str) -> int:
        return read_id(raw)


@dataclass(frozen=True)
class InChoice(Filter):
    """images: `choice=ID`: in that featured collection, when the caller may see the collection."""

    items: str = "rm.choice_items"
    choices: str = "rm.choices"

    def read(self, raw: str) -> int:
        return read_id(raw)
