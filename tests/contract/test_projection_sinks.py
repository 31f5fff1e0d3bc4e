"""One contract for every projection sink (projectors/sink.py): effects and checkpoint are stored together or
not at all, a stale position is refused, and a commit reports exactly the objects its batch changed.

Each sink runs the same tags projection: the PostgreSQL sink the real TagsProjector on a fresh database, the
in-memory sink a dict version of it.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from events.changes import ObjectsChanged
from events.ids import aggregate_uuid, split_uuid
from events.tags import TagCreated, TagDeleted, TagRenamed
from projectors.memory import MemorySink, State
from projectors.postgres.sink import PostgresSink
from projectors.postgres.tags import TagsProjector
from projectors.sink import CheckpointMoved, Projected, ProjectionSink

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def _event(cls: Any, number: int, version: int, **fields: Any) -> Any:
    return cls(originator_id=aggregate_uuid("tag", number), originator_version=version, timestamp=NOW, **fields)


def created(number: int, name: str) -> TagCreated:
    return _event(TagCreated, number, 1, originator_topic="command.tags:Tag", name=name, user_id=None)


def renamed(number: int, name: str, version: int = 2) -> TagRenamed:
    return _event(TagRenamed, number, version, name=name, previous_name="")


def deleted(number: int, version: int = 2) -> TagDeleted:
    return _event(TagDeleted, number, version, name="")


def batch(start: int, *events: Any) -> list[Projected]:
    return [Projected(start + n, event) for n, event in enumerate(events)]


class SinkContract(ABC):
    """Subclasses give a fresh sink and a way to read the tags it holds ({id: name})."""

    @abstractmethod
    def sink(self) -> ProjectionSink: ...

    @abstractmethod
    async def names(self, sink: ProjectionSink) -> dict[int, str]: ...

    def run(self, scenario: Any) -> None:
        async def wrapped() -> None:
            sink = self.sink()
            assert await sink.open(asyncio.Event())
            try:
                await scenario(sink)
            finally:
                await sink.close()

        asyncio.run(wrapped())

    def test_a_fresh_sink_starts_at_zero_and_empty(self) -> None:
        async def scenario(sink: ProjectionSink) -> None:
            assert await sink.load_checkpoint() == 0
            assert await self.names(sink) == {}

        self.run(scenario)

    def test_a_commit_stores_the_effects_and_the_checkpoint_and_reports_exactly_its_objects(self) -> None:
        async def scenario(sink: ProjectionSink) -> None:
            await sink.apply_batch(0, batch(1, created(11, "sun"), created(12, "sea"), renamed(11, "sky")))
            assert await sink.commit(3) == [ObjectsChanged("tags", (11, 12), 3, sink.name)]
            assert await sink.load_checkpoint() == 3
            assert await self.names(sink) == {11: "sky", 12: "sea"}
            await sink.apply_batch(3, batch(4, deleted(12)))
            assert await sink.commit(5) == [ObjectsChanged("tags", (12,), 5, sink.name)]  # 5: a skipped claim at 5
            assert await sink.load_checkpoint() == 5
            assert await self.names(sink) == {11: "sky"}

        self.run(scenario)

    def test_a_batch_without_events_moves_the_checkpoint_and_announces_nothing(self) -> None:
        async def scenario(sink: ProjectionSink) -> None:
            await sink.apply_batch(0, [])
            assert await sink.commit(7) == []
            assert await sink.load_checkpoint() == 7

        self.run(scenario)

    def test_an_aborted_batch_leaves_neither_effects_nor_checkpoint(self) -> None:
        async def scenario(sink: ProjectionSink) -> None:
            await sink.apply_batch(0, batch(1, created(21, "kept")))
            await sink.commit(1)
            await sink.apply_batch(1, batch(2, created(22, "lost"), renamed(21, "lost too")))
            await sink.abort()
            assert await sink.load_checkpoint() == 1
            assert await self.names(sink) == {21: "kept"}
            # The same events again, as the log redelivers them: applied once.
            await sink.apply_batch(1, batch(2, created(22, "lost"), renamed(21, "found")))
            assert await sink.commit(3) == [ObjectsChanged("tags", (21, 22), 3, sink.name)]
            assert await self.names(sink) == {21: "found", 22: "lost"}

        self.run(scenario)

    def test_a_batch_from_a_position_that_is_not_the_checkpoint_is_refused(self) -> None:
        async def scenario(sink: ProjectionSink) -> None:
            await sink.apply_batch(0, batch(1, created(31, "one")))
            await sink.commit(1)
            with pytest.raises(CheckpointMoved):
                await sink.apply_batch(0, batch(1, created(31, "one")))
            assert await sink.load_checkpoint() == 1
            assert await self.names(sink) == {31: "one"}

        self.run(scenario)


class TestPostgresSink(SinkContract):
    @pytest.fixture(autouse=True)
    def _database(self, database_url: str) -> None:
        self.database_url = database_url

    def sink(self) -> ProjectionSink:
        return PostgresSink(TagsProjector(), self.database_url)

    async def names(self, sink: ProjectionSink) -> dict[int, str]:
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            rows = await (await conn.execute("SELECT id, name FROM rm.tags")).fetchall()
        return {int(number): str(name) for number, name in rows}


class MemoryTags:
    name = "tags"

    def apply(self, state: State, seq: int, event: Any) -> None:
        tags = state.setdefault("tags", {})
        number = _number(event)
        if isinstance(event, TagCreated):
            tags[number] = {"name": event.name, "version": seq}
        elif isinstance(event, TagRenamed):
            tags[number].update(name=event.name, version=seq)
        elif isinstance(event, TagDeleted):
            tags.pop(number, None)

    def changed(self, event: Any) -> Iterable[tuple[str, int]]:
        yield "tags", _number(event)


def _number(event: Any) -> int:
    split = split_uuid(event.originator_id)
    assert split is not None
    return split[1]


class TestMemorySink(SinkContract):
    def sink(self) -> ProjectionSink:
        return MemorySink(MemoryTags())

    async def names(self, sink: ProjectionSink) -> dict[int, str]:
        assert isinstance(sink, MemorySink)
        return {number: row["name"] for number, row in sink.state.get("tags", {}).items()}
