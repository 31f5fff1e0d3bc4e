"""Read model of tags: one row per live tag."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.ids import split_uuid
from events.tags import TagCreated, TagDeleted, TagRenamed
from projectors.base import Projector
from projectors.postgres.buffered import BufferedCursor


def _id(event: Any) -> int:
    split = split_uuid(event.originator_id)
    assert split is not None
    return split[1]


class TagsProjector(Projector):
    name = "tags"
    tables = ("tags",)
    collections = ("tags",)

    def ddl(self) -> Sequence[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {s}.tags ("
            " id bigint PRIMARY KEY, name text NOT NULL, user_id bigint,"
            " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, version bigint NOT NULL)",
            "CREATE UNIQUE INDEX IF NOT EXISTS tags_name_key ON {s}.tags (lower(name))",
            "CREATE INDEX IF NOT EXISTS tags_created ON {s}.tags (created_at DESC, id DESC)",
        ]

    async def apply(self, cur: BufferedCursor, s: str, seq: int, event: Any) -> None:
        if isinstance(event, TagCreated):
            await cur.execute(
                self.sql("INSERT INTO {s}.tags (id, name, user_id, created_at, updated_at, version)"
                         " VALUES (%s, %s, %s, %s, %s, %s)", s),
                (_id(event), event.name, event.user_id, event.timestamp, event.timestamp, seq),
            )
        elif isinstance(event, TagRenamed):
            await cur.execute(
                self.sql("UPDATE {s}.tags SET name = %s, updated_at = %s, version = %s WHERE id = %s", s),
                (event.name, event.timestamp, seq, _id(event)),
            )
        elif isinstance(event, TagDeleted):
            await cur.execute(self.sql("DELETE FROM {s}.tags WHERE id = %s", s), (_id(event),))
