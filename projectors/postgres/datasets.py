"""Read model of datasets: one row per live dataset, its items as jsonb."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from events.datasets import (
    DatasetCreated,
    DatasetDeleted,
    DatasetItemsReplaced,
    DatasetRenamed,
    DatasetVisibilityChanged,
)
from projectors.base import Projector
from projectors.postgres.ids import object_id


class DatasetsProjector(Projector):
    name = "datasets"
    tables = ("datasets",)
    collections = ("datasets",)

    def ddl(self) -> Sequence[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {s}.datasets ("
            " id bigint PRIMARY KEY, user_id bigint NOT NULL, name text NOT NULL, items jsonb NOT NULL,"
            " public boolean NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
            " version bigint NOT NULL)",
            "CREATE INDEX IF NOT EXISTS datasets_created ON {s}.datasets (created_at DESC, id DESC)",
            "CREATE INDEX IF NOT EXISTS datasets_user_created ON {s}.datasets (user_id, created_at DESC, id DESC)",
        ]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, DatasetCreated):
            await cur.execute(
                self.sql("INSERT INTO {s}.datasets (id, user_id, name, items, public, created_at, updated_at,"
                         " version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", s),
                (object_id(event), event.user_id, event.name, Jsonb(event.items), event.public, event.timestamp,
                 event.timestamp, seq),
            )
        elif isinstance(event, DatasetRenamed):
            await self._set(cur, s, seq, event, "name", event.name)
        elif isinstance(event, DatasetItemsReplaced):
            await self._set(cur, s, seq, event, "items", Jsonb(event.items))
        elif isinstance(event, DatasetVisibilityChanged):
            await self._set(cur, s, seq, event, "public", event.public)
        elif isinstance(event, DatasetDeleted):
            await cur.execute(self.sql("DELETE FROM {s}.datasets WHERE id = %s", s), (object_id(event),))

    async def _set(self, cur: Any, s: str, seq: int, event: Any, column: str, value: Any) -> None:
        await cur.execute(
            self.sql(f"UPDATE {{s}}.datasets SET {column} = %s, updated_at = %s, version = %s WHERE id = %s", s),
            (value, event.timestamp, seq, object_id(event)),
        )
