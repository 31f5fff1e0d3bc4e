"""Process managers: work that follows from events, done outside any projection's transaction.

A process manager is two parts, both here so a new one (the task scheduler, the training lifecycle) is one
subclass:

1. its **queue projection** (`queue`, an ordinary Projector run by the projection loop): it turns events into
   rows of its own tables in `public` (work to do, not a read model), exactly once like any projection. It may
   keep more than the queue: whatever the worker needs to know, projected from the log (the account-deletion
   manager keeps what each user owns). It never has an effect outside its tables.
2. its **worker** (`run`): every `interval_s` it lists the queued items (`pending`), and for each one it can
   lock (a PostgreSQL advisory lock per item, infra/locks.py PROCESS_ITEM: instances of the same manager share
   the work) it calls `handle`; an item whose `handle` returns True is removed with `finish`, any other stays
   for the next round; `handle` raises `Later` to end the round early (what it waits for is not there yet).
   `tick` runs once per round before that, for periodic work.

Restart safety: an item leaves the queue only after `handle` has done its work, so a crash anywhere means the
item is handled again; `handle` must therefore be repeatable (deleting what is gone already is no error;
commands it sends are idempotent or tolerate "not found"). A worker that must see its queue projection (or a
read model) at a point of the log waits with `projectors.checkpoints.wait_until_projected`.

Wiring (aidraw/process_tasks.py): `run_process_manager(manager, target, stop)` runs the queue projection's loop
and the worker side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

import psycopg

from infra import locks
from projectors.base import Projector
from projectors.loop import ProjectionLoop, Target

log = logging.getLogger("aidraw.process")

Item = TypeVar("Item")
Conn = psycopg.AsyncConnection[Any]


class Later(Exception):
    """Raised by `handle`: leave this item and the rest of the queue for the next round."""


class ProcessManager(ABC, Generic[Item]):
    name: ClassVar[str]  # the manager's name (logs, item locks); its queue projection has its own
    interval_s: float = 1.0

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    @property
    @abstractmethod
    def queue(self) -> Projector:
        """The queue projection (its tables live in `public`; its `ddl` is part of the migration step)."""

    @abstractmethod
    async def pending(self, conn: Conn) -> Sequence[Item]:
        """The queued items, oldest first."""

    @abstractmethod
    def item_key(self, item: Item) -> str:
        """A stable name of the item, for its lock."""

    @abstractmethod
    async def handle(self, conn: Conn, item: Item) -> bool:
        """Do the item's work (repeatably); True when it is done and may leave the queue."""

    @abstractmethod
    async def finish(self, conn: Conn, item: Item) -> None:
        """Remove the item from the queue."""

    async def tick(self, conn: Conn) -> None:
        """Periodic work once per round, before the queue is looked at (none by default)."""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
                    while not stop.is_set():
                        await self.tick(conn)
                        await self.sweep(conn)
                        await sleep_or_stop(stop, self.interval_s)
            except (psycopg.OperationalError, OSError, TimeoutError) as exc:
                log.warning("%s interrupted; retrying", self.name, extra={"error": str(exc)})
                await sleep_or_stop(stop, 1.0)
            except Exception:  # a failing item never stops the worker: it stays queued and is tried again
                log.exception("%s failed; retrying", self.name)
                await sleep_or_stop(stop, max(self.interval_s, 1.0))

    async def sweep(self, conn: Conn) -> int:
        """Handle every queued item this instance can lock; the number finished."""
        finished = 0
        for item in await self.pending(conn):
            lock = (locks.PROCESS_ITEM, locks.name_id(f"{self.name}:{self.item_key(item)}"))
            got = await (await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", lock)).fetchone()
            if not (got and got[0]):
                continue  # another instance is on it
            try:
                if await self.handle(conn, item):
                    await self.finish(conn, item)
                    finished += 1
            except Later:
                break
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock)
        return finished


async def run_process_manager(manager: ProcessManager[Any], target: Target, stop: asyncio.Event,
                              batch_size: int = 1000) -> None:
    """The manager's queue projection and its worker, until `stop`."""
    await asyncio.gather(ProjectionLoop(manager.queue, target, batch_size=batch_size).run(stop), manager.run(stop))


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
