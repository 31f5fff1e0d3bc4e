"""Rebuild a read model from sequence 0 beside the live one, then swap it in.

1. Build a fresh copy in schema `rm_rebuild` (checkpoint `<name>@rebuild`) up to the log's current end, with a
   progress bar; the live copy keeps serving meanwhile. Then build its deferred indexes (Projector.deferred_ddl:
   the images' HNSW index) in one pass over the rows, with `maintenance_work_mem` = `index_memory`.
2. While a live projector runs (it holds its leader lock), wait for it to reach the fresh copy's position, so the
   two can be compared (bounded: a stuck live projector does not hold the rebuild).
3. Lock the live checkpoint row: the live projector's next batch waits. Bring the fresh copy to exactly the live
   position, compare the two copies row by row, then drop the live tables and move the fresh ones into `rm`, in
   that same transaction. Queries see the old tables until the commit and the new ones after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from projectors import checkpoints
from projectors.base import LIVE_SCHEMA, REBUILD_SCHEMA, Projector
from projectors.loop import ProjectionLoop, Target, leader_lock

LIVE_CATCH_UP_S = 30.0
INDEX_MEMORY = "1GB"  # maintenance_work_mem for the deferred indexes (an HNSW build wants its graph in memory)


@dataclass
class RebuildReport:
    projection: str
    position: int
    compared: bool
    differences: dict[str, int]
    reshaped: tuple[str, ...] = ()  # tables whose columns changed (a new release): not compared row by row
    deferred_s: float = 0.0  # seconds spent building the deferred indexes

    @property
    def identical(self) -> bool:
        return self.compared and not any(self.differences.values())


async def _build_to(projector: Projector, target: Target, until: int, progress: Callable[[int], None] | None) -> int:
    loop = ProjectionLoop(projector, target, schema=REBUILD_SCHEMA, checkpoint_name=f"{projector.name}@rebuild",
                          durable=False, on_progress=progress)
    return await loop.run(asyncio.Event(), until=until)


async def _differences(conn: psycopg.AsyncConnection[Any], table: str) -> int:
    row = await (await conn.execute(
        f"SELECT (SELECT count(*) FROM (SELECT * FROM {LIVE_SCHEMA}.{table} EXCEPT ALL "
        f"SELECT * FROM {REBUILD_SCHEMA}.{table}) a) + (SELECT count(*) FROM (SELECT * FROM "
        f"{REBUILD_SCHEMA}.{table} EXCEPT ALL SELECT * FROM {LIVE_SCHEMA}.{table}) b)"
    )).fetchone()
    return int(row[0]) if row else 0


async def _await_live(conn: psycopg.AsyncConnection[Any], name: str, position: int, timeout: float) -> None:
    """Wait until the live projector, if one is running, has projected up to `position` (or `timeout` passes)."""
    classid, objid = leader_lock(name)

    async def no_live_projector() -> bool:
        held = await (await conn.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND objsubid = 2 "
            "AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (classid, objid))).fetchone()  # advisory locks are per database; pg_locks lists every database's
        return held is None

    await checkpoints.wait_until_projected(conn, [name], position, timeout, give_up=no_live_projector, poll_s=0.1)


async def _same_columns(conn: psycopg.AsyncConnection[Any], table: str) -> bool:
    """Whether the live and the fresh copy of `table` have the same columns: a read model whose shape changed
    (a new release) is rebuilt without a row comparison."""
    # format_type names each column's type with its modifier: vector(448) and vector(400) differ (a new
    # embedding recipe, docs/search.md), which information_schema's data_type does not tell apart.
    row = await (await conn.execute(
        "SELECT array_agg(a.attname::text || ':' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)"
        " FILTER (WHERE n.nspname = %s) = array_agg(a.attname::text || ':' || format_type(a.atttypid,"
        " a.atttypmod) ORDER BY a.attnum) FILTER (WHERE n.nspname = %s)"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = %s AND n.nspname IN (%s, %s) AND a.attnum > 0 AND NOT a.attisdropped",
        (LIVE_SCHEMA, REBUILD_SCHEMA, table, LIVE_SCHEMA, REBUILD_SCHEMA))).fetchone()
    return bool(row and row[0])


async def _build_deferred(database_url: str, projector: Projector, memory: str) -> float:
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (memory,))
        for statement in projector.deferred_ddl():
            await conn.execute(projector.sql(statement, REBUILD_SCHEMA))  # type: ignore[arg-type]
    return time.perf_counter() - started


async def rebuild(projector: Projector, target: Target, log_end: int,
                  progress: Callable[[int], None] | None = None,
                  live_catch_up_s: float = LIVE_CATCH_UP_S, index_memory: str = INDEX_MEMORY) -> RebuildReport:
    name = projector.name
    async with await psycopg.AsyncConnection.connect(target.database_url) as conn:
        await checkpoints.setup(conn)
        async with conn.transaction():
            await conn.execute(f"DROP SCHEMA IF EXISTS {REBUILD_SCHEMA} CASCADE")
            await conn.execute("DELETE FROM public.projection_checkpoints WHERE name = %s", (f"{name}@rebuild",))
    built = await _build_to(projector, target, log_end, progress)
    deferred_s = await _build_deferred(target.database_url, projector, index_memory)
    async with await psycopg.AsyncConnection.connect(target.database_url, autocommit=True) as conn:
        await _await_live(conn, name, built, live_catch_up_s)

    async with await psycopg.AsyncConnection.connect(target.database_url) as conn, conn.transaction():
        live = await checkpoints.lock_and_read(conn, name)  # the live projector waits from here
        if live > built:
            built = await _build_to(projector, target, live, progress)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {LIVE_SCHEMA}")
        compared = live == built
        differences: dict[str, int] = {}
        reshaped: list[str] = []
        for table in projector.tables:
            if not await _same_columns(conn, table):
                reshaped.append(table)
            elif compared:
                differences[table] = await _differences(conn, table)
            await conn.execute(f"DROP TABLE IF EXISTS {LIVE_SCHEMA}.{table}")
            await conn.execute(f"ALTER TABLE {REBUILD_SCHEMA}.{table} SET SCHEMA {LIVE_SCHEMA}")
        await checkpoints.store(conn, name, built)
        await conn.execute("DELETE FROM public.projection_checkpoints WHERE name = %s", (f"{name}@rebuild",))
    return RebuildReport(projection=name, position=built, compared=compared,
                         differences=differences, reshaped=tuple(reshaped), deferred_s=deferred_s)
