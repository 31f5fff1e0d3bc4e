"""A cursor for projectors that sends a batch's writes as few round trips as possible.

Projectors write one event at a time (`await cur.execute(...)`), which is the clearest way to read them; over a
network each statement would cost a round trip. This cursor buffers writes and sends runs of the same statement
with `executemany` (psycopg pipelines those). A statement that reads (SELECT, RETURNING) first sends everything
buffered, so a projector always reads its own writes.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncCursor

_READS = ("select", "with", "returning")


class BufferedCursor:
    def __init__(self, cur: AsyncCursor[Any]) -> None:
        self._cur = cur
        self._sql: str | None = None
        self._rows: list[Any] = []

    async def execute(self, sql: str, params: Any = None) -> BufferedCursor:
        lowered = sql.lower()
        if lowered.lstrip().startswith(_READS[:2]) or " returning " in lowered:
            await self.flush()
            await self._cur.execute(sql, params)  # type: ignore[arg-type]
            return self
        if sql != self._sql:
            await self.flush()
            self._sql = sql
        self._rows.append(params if params is not None else ())
        return self

    async def flush(self) -> None:
        if self._sql is not None and self._rows:
            if len(self._rows) == 1:
                await self._cur.execute(self._sql, self._rows[0])  # type: ignore[arg-type]
            else:
                await self._cur.executemany(self._sql, self._rows)  # type: ignore[arg-type]
        self._sql, self._rows = None, []

    async def fetchone(self) -> Any:
        return await self._cur.fetchone()

    async def fetchall(self) -> list[Any]:
        return await self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount
