"""The process-manager worker (projectors/process.py) on a real PostgreSQL: an item leaves the queue only once
its work is done, a crash mid-work leaves it for the next round, instances share the queue by item lock, and
`Later` ends a round early."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from infra import locks
from projectors.base import Projector
from projectors.process import Conn, Later, ProcessManager


class NoQueue(Projector):
    name = "test_queue"
    tables = ()

    def ddl(self) -> Sequence[str]:
        return []

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        return None


class Recorder(ProcessManager[str]):
    """Handles queued words: 'busy' is not done yet, 'crash' fails once, 'wait' asks for a later round."""

    name = "recorder"

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.handled: list[str] = []
        self.crashed = False

    @property
    def queue(self) -> Projector:
        return NoQueue()

    async def pending(self, conn: Conn) -> Sequence[str]:
        rows = await (await conn.execute("SELECT word FROM public.words ORDER BY word")).fetchall()
        return [str(word) for (word,) in rows]

    def item_key(self, item: str) -> str:
        return item

    async def handle(self, conn: Conn, item: str) -> bool:
        self.handled.append(item)
        if item == "crash" and not self.crashed:
            self.crashed = True
            raise RuntimeError("the process died here")
        if item == "wait":
            raise Later
        return item != "busy"

    async def finish(self, conn: Conn, item: str) -> None:
        await conn.execute("DELETE FROM public.words WHERE word = %s", (item,))


async def queue_of(database_url: str, *words: str) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    await conn.execute("CREATE TABLE public.words (word text PRIMARY KEY)")
    for word in words:
        await conn.execute("INSERT INTO public.words VALUES (%s)", (word,))
    return conn


async def queued(conn: Conn) -> list[str]:
    return [str(w) for (w,) in await (await conn.execute("SELECT word FROM public.words ORDER BY word")).fetchall()]


def test_done_items_leave_the_queue_and_unfinished_ones_stay(database_url: str) -> None:
    async def scenario() -> None:
        conn = await queue_of(database_url, "apple", "busy", "cherry")
        worker = Recorder(database_url)
        assert await worker.sweep(conn) == 2
        assert await queued(conn) == ["busy"] and worker.handled == ["apple", "busy", "cherry"]
        await conn.close()

    asyncio.run(scenario())


def test_a_crash_mid_work_leaves_the_item_for_the_next_round(database_url: str) -> None:
    async def scenario() -> None:
        conn = await queue_of(database_url, "crash", "later")
        worker = Recorder(database_url)
        with pytest.raises(RuntimeError):
            await worker.sweep(conn)
        assert await queued(conn) == ["crash", "later"]  # nothing was lost
        assert await worker.sweep(conn) == 2  # the next round (a restarted worker) does it
        assert await queued(conn) == []
        await conn.close()

    asyncio.run(scenario())


def test_the_worker_survives_a_failing_item_and_finishes_it_later(database_url: str) -> None:
    async def scenario() -> None:
        conn = await queue_of(database_url, "crash")
        worker = Recorder(database_url)
        worker.interval_s = 0.05
        stop = asyncio.Event()
        running = asyncio.ensure_future(worker.run(stop))
        for _ in range(100):
            if not await queued(conn):
                break
            await asyncio.sleep(0.1)
        stop.set()
        await running
        assert await queued(conn) == [] and worker.handled == ["crash", "crash"]
        await conn.close()

    asyncio.run(scenario())


def test_an_item_another_instance_holds_is_skipped(database_url: str) -> None:
    async def scenario() -> None:
        conn = await queue_of(database_url, "apple", "pear")
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as other:
            await other.execute("SELECT pg_advisory_lock(%s, %s)",
                                (locks.PROCESS_ITEM, locks.name_id("recorder:apple")))
            worker = Recorder(database_url)
            assert await worker.sweep(conn) == 1
            assert worker.handled == ["pear"] and await queued(conn) == ["apple"]
        await conn.close()

    asyncio.run(scenario())


def test_later_ends_the_round_and_keeps_the_rest(database_url: str) -> None:
    async def scenario() -> None:
        conn = await queue_of(database_url, "apple", "wait", "zebra")
        worker = Recorder(database_url)
        assert await worker.sweep(conn) == 1
        assert worker.handled == ["apple", "wait"] and await queued(conn) == ["wait", "zebra"]
        await conn.close()

    asyncio.run(scenario())
