"""The blob reaper: removes the blobs of deleted images once no image uses them any more.

Two parts, both in the projector process:
- `BlobReapQueue`, a projector without tables: on ImageDeleted it queues the image's blob keys (in
  public.blob_reap_queue, with its checkpoint, exactly once like any projection);
- `BlobReaper`, a loop that takes queued keys one at a time: with the key's lock held exclusively
  (infra/blob_locks.py) it reads the log's end, waits until the images projection has reached it, and deletes
  the blob if no row of rm.images names it; then it drops the key from the queue. Every step can be repeated
  (deleting a missing blob is no error), so a crash anywhere only means the key is looked at again.

A third part catches what no event names: an upload stores its blob before it appends its event, so an API
process killed in between leaves a blob no image uses. Every `orphan_sweep_s` the reaper lists the image blobs
last written more than `orphan_age_s` ago (an upload in flight is younger) that no row of rm.images names, and
queues them; the queue's usual checks (key lock, images projection caught up, still unused) decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg

from events.images import ImageDeleted
from infra.blob_locks import LOCK_CLASS, QUEUE_DDL, key_lock_id
from infra.storage import BlobStore, content_type_of
from projectors import checkpoints
from projectors.base import LIVE_SCHEMA, Projector

log = logging.getLogger("aidraw.blobs")


class BlobReapQueue(Projector):
    name = "blob_reaper"
    tables = ()

    def ddl(self) -> Sequence[str]:
        return [QUEUE_DDL]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, ImageDeleted):
            for key in (event.blob_key, event.thumbnail_key):
                if key:
                    await cur.execute(
                        "INSERT INTO public.blob_reap_queue (key) VALUES (%s) ON CONFLICT DO NOTHING", (key,))


class BlobReaper:
    def __init__(self, blobs: BlobStore, database_url: str, log_end: Callable[[], Awaitable[int]], *,
                 images_projection: str = "images", interval_s: float = 1.0, catch_up_s: float = 10.0,
                 orphan_sweep_s: float = 6 * 3600, orphan_age_s: float = 3600) -> None:
        self.blobs = blobs
        self.database_url = database_url
        self.log_end = log_end
        self.images_projection = images_projection
        self.interval_s = interval_s
        self.catch_up_s = catch_up_s
        self.orphan_sweep_s = orphan_sweep_s
        self.orphan_age_s = orphan_age_s
        self._next_orphan_sweep = 0.0  # the first one runs at start

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
                    await conn.execute(QUEUE_DDL)
                    while not stop.is_set():
                        if time.monotonic() >= self._next_orphan_sweep:
                            await self.queue_orphans(conn)
                            self._next_orphan_sweep = time.monotonic() + self.orphan_sweep_s
                        await self.sweep(conn)
                        await _sleep_or_stop(stop, self.interval_s)
            except (psycopg.OperationalError, OSError, TimeoutError) as exc:
                log.warning("blob reaper interrupted; retrying", extra={"error": str(exc)})
                await _sleep_or_stop(stop, 1.0)

    async def queue_orphans(self, conn: psycopg.AsyncConnection[Any], chunk: int = 1000) -> int:
        """Queue the old image blobs no row of rm.images names; the number queued."""
        if not await self._table_exists(conn, f"{LIVE_SCHEMA}.images"):
            return 0  # nothing projected yet: nothing to compare with
        keys = await asyncio.to_thread(self._old_image_keys, time.time() - self.orphan_age_s)
        queued = 0
        for start in range(0, len(keys), chunk):
            rows = await (await conn.execute(
                f"INSERT INTO public.blob_reap_queue (key) SELECT k FROM unnest(%s::text[]) AS k"
                f" WHERE NOT EXISTS (SELECT 1 FROM {LIVE_SCHEMA}.images i WHERE i.blob_key = k)"
                f" AND NOT EXISTS (SELECT 1 FROM {LIVE_SCHEMA}.images i WHERE i.thumbnail_key = k)"
                f" ON CONFLICT DO NOTHING RETURNING key", (keys[start:start + chunk],))).fetchall()
            queued += len(rows)
        if queued:
            log.info("unused blobs queued for removal", extra={"count": queued, "looked_at": len(keys)})
        return queued

    def _old_image_keys(self, before: float) -> list[str]:
        # Image blobs only: other kinds of blob (model weights, later) are not named by rm.images.
        return [k for k in self.blobs.keys_before(before) if content_type_of(k).startswith("image/")]

    @staticmethod
    async def _table_exists(conn: psycopg.AsyncConnection[Any], table: str) -> bool:
        row = await (await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))).fetchone()
        return bool(row and row[0])

    async def sweep(self, conn: psycopg.AsyncConnection[Any], limit: int = 100) -> int:
        """Look at up to `limit` queued keys; the number of blobs deleted."""
        rows = await (await conn.execute(
            "SELECT key FROM public.blob_reap_queue ORDER BY queued_at, key LIMIT %s", (limit,))).fetchall()
        deleted = 0
        for (key,) in rows:
            lock = (LOCK_CLASS, key_lock_id(key))
            got = await (await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", lock)).fetchone()
            if not (got and got[0]):
                continue  # an upload of these bytes is under way: next round
            try:
                outcome = await self._reap(conn, key)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock)
            if outcome is None:
                break  # the images projection is behind: try again later
            deleted += outcome
        return deleted

    async def _reap(self, conn: psycopg.AsyncConnection[Any], key: str) -> int | None:
        end = await self.log_end()  # read under the lock: every upload that used the key is at or below it
        if not await self._images_reached(conn, end):
            return None
        row = await (await conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM {LIVE_SCHEMA}.images WHERE blob_key = %s OR thumbnail_key = %s)",
            (key, key))).fetchone()
        used = bool(row and row[0])
        if not used:
            await asyncio.to_thread(self.blobs.delete, key)
        await conn.execute("DELETE FROM public.blob_reap_queue WHERE key = %s", (key,))
        return 0 if used else 1

    async def _images_reached(self, conn: psycopg.AsyncConnection[Any], end: int) -> bool:
        deadline = asyncio.get_running_loop().time() + self.catch_up_s
        while await checkpoints.read(conn, self.images_projection) < end:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
