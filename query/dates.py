"""The `date=` list filter: `YYYY`, `YYYYMM` or `YYYYMMDD`, alone (that period), with a trailing `+` (on or
after its first day), a trailing `-` (on or before its last day), or `A~B` (from A's first day to B's last day).

Days are UTC calendar days, so every date filter selects whole days: that is what lets the image counters
(kept per UTC day) answer `total` for date filters too. An unencoded `+` arrives as a space; the parser gets the
raw value with that space kept and reads it as `+`.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_PERIOD = re.compile(r"[0-9]{4}([0-9]{2}([0-9]{2})?)?")  # ASCII digits only (\d takes any script's)


@dataclass(frozen=True)
class DayRange:
    """Inclusive UTC days; None is unbounded on that side."""

    first: date | None
    last: date | None

    def contains(self, day: date) -> bool:
        return (self.first is None or day >= self.first) and (self.last is None or day <= self.last)

    @property
    def start(self) -> datetime | None:
        """The first instant inside the range."""
        return None if self.first is None else datetime(self.first.year, self.first.month, self.first.day,
                                                        tzinfo=UTC)

    @property
    def end(self) -> datetime | None:
        """The first instant after the range (None when that would be past year 9999)."""
        if self.last is None or self.last == date.max:
            return None
        after = self.last + timedelta(days=1)
        return datetime(after.year, after.month, after.day, tzinfo=UTC)


def _shown(text: str) -> str:
    """A value as a query string spells it: a space arrived as a `+`."""
    return text.replace(" ", "+")


def _period(text: str) -> tuple[date, date]:
    """The first and last day of a `YYYY`, `YYYYMM` or `YYYYMMDD` period."""
    if not _PERIOD.fullmatch(text):
        raise ValueError(f"{_shown(text)!r} is not YYYY, YYYYMM or YYYYMMDD")
    year = int(text[:4])
    if year < 1:
        raise ValueError(f"{text!r}: there is no year 0")
    if len(text) == 4:
        return date(year, 1, 1), date(year, 12, 31)
    month = int(text[4:6])
    if not 1 <= month <= 12:
        raise ValueError(f"{text!r}: month {month} does not exist")
    days = calendar.monthrange(year, month)[1]
    if len(text) == 6:
        return date(year, month, 1), date(year, month, days)
    day = int(text[6:])
    if not 1 <= day <= days:
        raise ValueError(f"{text!r}: day {day} does not exist in that month")
    return date(year, month, day), date(year, month, day)


def parse_date(raw: str) -> DayRange:
    """One `date=` value (one alternative of a comma list). One trailing space is an unencoded `+`; any other
    space (leading, doubled) is malformed. A refusal quotes the value as sent (`2026++`), then the bad part."""
    try:
        return _parse_date(raw)
    except ValueError as exc:
        raise ValueError(f"{_shown(raw)!r} is not a date filter ({exc})") from None


def _parse_date(raw: str) -> DayRange:
    text = raw[:-1] + "+" if raw.endswith(" ") else raw
    if "~" in text:
        start, _, end = text.partition("~")
        first, last = _period(start)[0], _period(end)[1]
        if first > last:
            raise ValueError(f"{_shown(text)!r} ends before it starts")
        return DayRange(first, last)
    if text.endswith("+"):
        return DayRange(_period(text[:-1])[0], None)
    if text.endswith("-"):
        return DayRange(None, _period(text[:-1])[1])
    first, last = _period(text)
    return DayRange(first, last)

