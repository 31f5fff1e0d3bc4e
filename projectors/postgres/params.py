"""Read model of params: one row per live param set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from events.params import ParamCreated, ParamDataReplaced, ParamDeleted, ParamRenamed, ParamVisibilityChanged
from projectors.base import Projector
from projectors.postgres.ids import object_id


class ParamsProjector(Projector):
    name = "params"
    tables = ("params",)
    collections = ("params",)

    def ddl(self) -> Sequence[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {s}.params ("
            " id bigint PRIMARY KEY, user_id bigint NOT NULL, name text NOT NULL, data jsonb NOT NULL,"
            " public boolean NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
            " version bigint NOT NULL)",
            "CREATE INDEX IF NOT EXISTS params_created ON {s}.params (created_at DESC, id DESC)",
            "CREATE INDEX IF NOT EXISTS params_user_created ON {s}.params (user_id, created_at DESC, id DESC)",
        ]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, ParamCreated):
            await cur.execute(
                self.sql("INSERT INTO {s}.params (id, user_id, name, data, public, created_at, updated_at, version)"
                         " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", s),
                (object_id(event), event.user_id, event.name, Jsonb(event.data), event.public, event.timestamp,
                 event.timestamp, seq),
            )
        elif isinstance(event, ParamRenamed):
            await self._set(cur, s, seq, event, "name", event.name)
        elif isinstance(event, ParamDataReplaced):
            await self._set(cur, s, seq, event, "data", Jsonb(event.data))
        elif isinstance(event, ParamVisibilityChanged):
            await self._set(cur, s, seq, event, "public", event.public)
        elif isinstance(event, ParamDeleted):
            await cur.execute(self.sql("DELETE FROM {s}.params WHERE id = %s", s), (object_id(event),))

    async def _set(self, cur: Any, s: str, seq: int, event: Any, column: str, value: Any) -> None:
        await cur.execute(
            self.sql(f"UPDATE {{s}}.params SET {column} = %s, updated_at = %s, version = %s WHERE id = %s", s),
            (value, event.timestamp, seq, object_id(event)),
        )
