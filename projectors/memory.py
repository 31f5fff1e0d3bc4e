"""An in-memory projection sink, for unit tests of projections and of the loop's rules without a database.

It keeps the state a `MemoryProjection` builds (a dict per collection) and the checkpoint in memory. A batch is
applied to a copy of the state and swapped in on `commit`, so an aborted batch leaves nothing: the same
guarantees as the PostgreSQL sink (tests/contract/test_projection_sinks.py runs one contract over both).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from events.changes import ObjectsChanged
from projectors.sink import CheckpointMoved, Projected

State = dict[str, dict[int, dict[str, Any]]]  # collection -> id -> row


class MemoryProjection(Protocol):
    name: str

    def apply(self, state: State, seq: int, event: Any) -> None: ...

    def changed(self, event: Any) -> Iterable[tuple[str, int]]: ...


class MemorySink:
    def __init__(self, projection: MemoryProjection) -> None:
        self.projection = projection
        self.name = projection.name
        self.state: State = {}
        self.checkpoint = 0
        self._staged: State | None = None
        self._changed: dict[str, set[int]] = {}

    async def open(self, stop: asyncio.Event) -> bool:
        return not stop.is_set()

    async def close(self) -> None:
        self._staged = None

    async def load_checkpoint(self) -> int:
        return self.checkpoint

    async def apply_batch(self, position: int, events: Sequence[Projected]) -> None:
        if position != self.checkpoint:
            raise CheckpointMoved
        self._staged, self._changed = copy.deepcopy(self.state), {}
        for item in events:
            self.projection.apply(self._staged, item.sequence, item.event)
            for collection, number in self.projection.changed(item.event):
                self._changed.setdefault(collection, set()).add(number)

    async def commit(self, position: int) -> list[ObjectsChanged]:
        assert self._staged is not None, "apply_batch first"
        self.state, self.checkpoint, self._staged = self._staged, position, None
        return [ObjectsChanged(collection, tuple(sorted(ids)), position, self.name)
                for collection, ids in sorted(self._changed.items())]

    async def abort(self) -> None:
        self._staged = None
