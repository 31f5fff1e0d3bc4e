"""A rebuild compares with the live copy only at one position: it waits for a running live projector to get there."""

from __future__ import annotations

import asyncio
import time

import psycopg

from projectors import checkpoints
from projectors.loop import leader_lock
from projectors.rebuild import _await_live


async def _position(url: str, name: str, position: int) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await checkpoints.setup(conn)
        async with conn.transaction():
            await checkpoints.lock_and_read(conn, name)
            await checkpoints.store(conn, name, position)


async def _waited(url: str, name: str, position: int, timeout: float) -> float:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        started = time.monotonic()
        await _await_live(conn, name, position, timeout)
        return time.monotonic() - started


def test_waits_while_the_live_leader_catches_up_and_not_without_one(database_url: str) -> None:
    async def scenario() -> None:
        await _position(database_url, "tags", 5)
        # No live projector holds the leader lock: nothing to wait for.
        assert await _waited(database_url, "tags", 10, timeout=60.0) < 30.0
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as leader:
            await leader.execute("SELECT pg_advisory_lock(%s, %s)", leader_lock("tags"))
            # A leader that stays behind holds the rebuild only up to the bound.
            assert 0.5 <= await _waited(database_url, "tags", 10, timeout=0.5) < 30.0
            # A leader that gets there releases it as soon as it does.
            waiting = asyncio.ensure_future(_waited(database_url, "tags", 10, timeout=60.0))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            await _position(database_url, "tags", 10)
            assert 0.5 <= await waiting < 30.0

    asyncio.run(scenario())
