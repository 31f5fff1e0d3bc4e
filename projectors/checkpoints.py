"""Checkpoints: how far each projection has got in its stream, stored beside its rows (public.projection_checkpoints),
and the one way to wait for projections to reach a sequence (`wait_until_projected`).

The API's read-your-writes waits on the same positions but is told of them by NOTIFY (query/consistency.py);
everything else that must see the projections at a point of the log (the process managers, a rebuild, tests
and benchmarks) calls `wait_until_projected`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import psycopg
from psycopg import AsyncConnection

from infra import locks

NOTIFY_CHANNEL = "aidraw_projection"

SETUP = [
    "CREATE TABLE IF NOT EXISTS public.projection_checkpoints ("
    " name text PRIMARY KEY, position bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
]


async def setup(conn: AsyncConnection[Any]) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (locks.CHECKPOINTS_SETUP,))  # concurrent first starts
        for statement in SETUP:
            await conn.execute(statement)


async def lock_and_read(conn: AsyncConnection[Any], name: str) -> int:
    """Inside a transaction: the position of `name`, row-locked so two writers of one read model serialise."""
    await conn.execute(
        "INSERT INTO public.projection_checkpoints (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
        (name,),
    )
    row = await (await conn.execute(
        "SELECT position FROM public.projection_checkpoints WHERE name = %s FOR UPDATE", (name,)
    )).fetchone()
    assert row is not None
    return int(row[0])


async def store(conn: AsyncConnection[Any], name: str, position: int) -> None:
    await conn.execute(
        "UPDATE public.projection_checkpoints SET position = %s, updated_at = now() WHERE name = %s",
        (position, name),
    )
    await conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{name}:{position}"))


async def read(conn: AsyncConnection[Any], name: str) -> int:
    row = await (await conn.execute(
        "SELECT position FROM public.projection_checkpoints WHERE name = %s", (name,)
    )).fetchone()
    return int(row[0]) if row else 0


def read_all_sync(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        try:
            rows = conn.execute("SELECT name, position FROM public.projection_checkpoints").fetchall()
        except psycopg.errors.UndefinedTable:
            return {}
    return {str(name): int(pos) for name, pos in rows}


async def positions(conn: AsyncConnection[Any], names: Iterable[str]) -> dict[str, int]:
    """The positions of `names` (0 for a projection that never committed)."""
    wanted = list(names)
    rows = await (await conn.execute(
        "SELECT name, position FROM public.projection_checkpoints WHERE name = ANY(%s)", (wanted,))).fetchall()
    found = {str(name): int(position) for name, position in rows}
    return {name: found.get(name, 0) for name in wanted}


async def wait_until_projected(conn: AsyncConnection[Any], names: Iterable[str], sequence: int, timeout: float, *,
                               give_up: Callable[[], Awaitable[bool]] | None = None, poll_s: float = 0.05) -> bool:
    """Wait until every projection in `names` has reached `sequence`: True once they have, False when `timeout`
    seconds pass first or `give_up()` says there is no point waiting (no live projector is running). `conn` is
    in autocommit mode, so each look sees the latest commits."""
    wanted = list(names)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if min((await positions(conn, wanted)).values(), default=sequence) >= sequence:
            return True
        if asyncio.get_running_loop().time() >= deadline or (give_up is not None and await give_up()):
            return False
        await asyncio.sleep(poll_s)


def wait_until_projected_sync(database_url: str, names: Iterable[str], sequence: int, timeout: float, *,
                              poll_s: float = 0.1) -> bool:
    """`wait_until_projected` for synchronous callers (tests, benchmarks, tools), on a connection of its own."""
    async def wait() -> bool:
        async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
            await setup(conn)
            return await wait_until_projected(conn, names, sequence, timeout, poll_s=poll_s)

    return asyncio.run(wait())
