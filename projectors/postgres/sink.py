"""The PostgreSQL projection sink: a projector's rows and its checkpoint in one transaction.

`apply_batch` opens the transaction and row-locks the checkpoint (so a rebuild that holds that row, to swap its
fresh copy in, makes this batch wait), then runs the projector's statements through a BufferedCursor; `commit`
stores the checkpoint, sends NOTIFY (read-your-writes waits on it, query/consistency.py) and commits. The
active instance of a projection holds its leader lock (infra/locks.py) on the same connection for as long as
it runs; other instances wait in `open` as hot standbys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from events.changes import ObjectsChanged
from infra import locks
from projectors import checkpoints
from projectors.base import LIVE_SCHEMA, REBUILD_SCHEMA, Projector
from projectors.postgres.buffered import BufferedCursor
from projectors.sink import CheckpointMoved, Projected

log = logging.getLogger("aidraw.projector")


def leader_lock(checkpoint_name: str) -> tuple[int, int]:
    """The two-int advisory lock key a projection's active instance holds (pg_locks: classid, objid, objsubid 2)."""
    return locks.PROJECTOR_LEADER, locks.name_id(checkpoint_name) & 0x7FFFFFFF


async def create_schema(conn: psycopg.AsyncConnection[Any], projector: Projector, schema: str,
                        deferred: bool = True) -> None:
    """The projector's schema, tables and indexes (idempotent; concurrent callers take turns); without its
    deferred indexes when `deferred` is False (a rebuild's fresh copy makes them after the replay)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (locks.READ_MODEL_SETUP,))
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for statement in [*projector.ddl(), *(projector.deferred_ddl() if deferred else ())]:
            await conn.execute(projector.sql(statement, schema))  # type: ignore[arg-type]


class PostgresSink:
    def __init__(self, projector: Projector, database_url: str, schema: str = LIVE_SCHEMA,
                 checkpoint_name: str = "") -> None:
        self.projector = projector
        self.database_url = database_url
        self.schema = schema
        self.name = checkpoint_name or projector.name
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._open_batch = False
        self._changed: dict[str, set[int]] = {}

    @property
    def conn(self) -> psycopg.AsyncConnection[Any]:
        assert self._conn is not None, "open() the sink first"
        return self._conn

    async def open(self, stop: asyncio.Event | None = None) -> bool:
        """Connect, become the active instance (False if `stop` is set while waiting), create the schema."""
        self._conn = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
        if not await self._become_leader(stop or asyncio.Event()):
            return False
        await checkpoints.setup(self.conn)
        # The migration step (projectors/migrate.py) made the live schema already; a rebuild's is new. Either
        # way this is idempotent, and lets a loop run on a database nothing migrated (tests, benchmarks).
        await create_schema(self.conn, self.projector, self.schema, deferred=self.schema != REBUILD_SCHEMA)
        await self.conn.set_autocommit(False)
        return True

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _become_leader(self, stop: asyncio.Event) -> bool:
        waited = False
        while not stop.is_set():
            row = await (await self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                                 leader_lock(self.name))).fetchone()
            if row and row[0]:
                if waited:
                    log.info("%s: the active instance is gone; this one takes over", self.name,
                             extra={"projector": self.name})
                return True
            if not waited:
                waited = True
                log.info("%s: another instance is active (it holds the leader lock); this one waits as a hot "
                         "standby and takes over when it stops", self.name, extra={"projector": self.name})
            await asyncio.sleep(1.0)
        return False

    async def load_checkpoint(self) -> int:
        async with self.conn.transaction():
            return await checkpoints.lock_and_read(self.conn, self.name)

    async def apply_batch(self, position: int, events: Sequence[Projected]) -> None:
        self._open_batch = True  # autocommit is off: the first statement begins the transaction
        if await checkpoints.lock_and_read(self.conn, self.name) != position:
            await self.abort()
            raise CheckpointMoved
        self._changed = {}
        async with self.conn.cursor() as raw:
            cur = BufferedCursor(raw)  # runs of one statement go out as one executemany
            for item in events:
                await self.projector.apply(cur, self.schema, item.sequence, item.event)
                for collection, number in self.projector.changed(item.event):
                    self._changed.setdefault(collection, set()).add(number)
            await cur.flush()

    async def commit(self, position: int) -> list[ObjectsChanged]:
        assert self._open_batch, "apply_batch first"
        await checkpoints.store(self.conn, self.name, position)
        await self.conn.commit()
        self._open_batch = False
        return [ObjectsChanged(collection, tuple(sorted(ids)), position, self.name)
                for collection, ids in sorted(self._changed.items())]

    async def abort(self) -> None:
        self._open_batch = False
        if self._conn is not None and not self._conn.closed:
            await self._conn.rollback()
