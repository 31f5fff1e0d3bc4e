"""What every aggregate of ours shares: a public integer id packed in its UUID (events/ids.py)."""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from events.ids import split_uuid


class NumberedAggregate(Aggregate):
    @property
    def number(self) -> int:
        """The public id clients see."""
        split = split_uuid(self.id)
        assert split is not None
        return split[1]
