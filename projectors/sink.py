"""Where a projection's batches land: the `ProjectionSink` interface, and what a commit reports.

The projection loop (projectors/loop.py) knows the log; a sink knows the store. Per batch the loop calls

    await sink.open(stop)                            # connect; wait to be the active instance
    position = await sink.load_checkpoint()          # once at start, and again after a CheckpointMoved
    await sink.apply_batch(position, events)         # stage the events' effects (stream order)
    changed = await sink.commit(new_position)        # make them durable together with the checkpoint
    ... then acks the batch and announces `changed`

and a sink guarantees: after `commit` returns, the effects of every applied event and the checkpoint are both
stored, or (on any error before) neither is visible as done: the loop re-reads the checkpoint and the log
delivers the events again, so applying an event twice must leave the same state as once.

Two shapes fit:
- PostgreSQL (projectors/postgres/sink.py): rows and checkpoint in one transaction; `apply_batch` opens it and
  row-locks the checkpoint (a rebuild's swap waits on that lock), `commit` commits it.
- A search index with external versions (Elasticsearch, a later adapter): `apply_batch` bulk-writes documents
  with `version = stream sequence` (a replay is ignored by the index), `commit` writes the checkpoint document
  after the bulk write is acknowledged, so the checkpoint never runs ahead of the documents.
A sink that finds the checkpoint not where the loop believes raises `CheckpointMoved`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from events.changes import ObjectsChanged


class Projected(NamedTuple):
    """One decoded event of the batch, with its stream sequence (a NamedTuple: one is made per event)."""

    sequence: int
    event: Any


class CheckpointMoved(Exception):
    """The stored checkpoint is not where the loop believed: reload it and reposition the consumer."""


class ProjectionSink(Protocol):
    name: str  # the checkpoint's name

    async def open(self, stop: asyncio.Event) -> bool:
        """Connect and wait until this instance is the projection's active one (False: `stop` was set first)."""

    async def close(self) -> None: ...

    async def load_checkpoint(self) -> int:
        """The last stream sequence whose effects are stored (0: none)."""

    async def apply_batch(self, position: int, events: Sequence[Projected]) -> None:
        """Stage the effects of `events` (in stream order, all after `position`, the checkpoint the loop holds).
        Raises CheckpointMoved if the stored checkpoint is not `position`."""

    async def commit(self, position: int) -> list[ObjectsChanged]:
        """Store the staged effects and the checkpoint `position` together; the objects they changed."""

    async def abort(self) -> None:
        """Drop staged effects (an error between apply_batch and commit)."""
