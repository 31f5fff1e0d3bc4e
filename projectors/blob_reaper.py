"""The blob reaper: a process manager (projectors/process.py) that removes the blobs of deleted images once no
image uses them any more.

- Its queue projection, `BlobReapQueue`, queues a deleted image's blob keys on ImageDeleted (in
  public.blob_reap_queue). It only queues: the blob itself is deleted by the worker, outside any projection.
- Its worker, `BlobReaper`, takes queued keys one at a time: with the key's lock held exclusively
  (infra/blob_locks.py) it reads the log's end, waits until the images projection has reached it, and deletes
  the blob if no row of rm.images names it; then it drops the key from the queue. Every step can be repeated
  (deleting a missing blob is no error), so a crash anywhere only means the key is looked at again.

A third part catches what no event names: an upload stores its blob before it appends its event, so an API
process killed in between leaves a blob no image uses. Every `orphan_sweep_s` the reaper (its `tick`) lists the
image blobs last written more than `orphan_age_s` ago (an upload in flight is younger) that no row of rm.images
names, and queues them; the queue's usual checks (key lock, images projection caught up, still unused) decide.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from events.images import ImageDeleted
from infra import locks
from infra.blob_locks import QUEUE_DDL, key_lock_id
from infra.storage import BlobStore, content_type_of
from projectors import checkpoints
from projectors.base import LIVE_SCHEMA, Projector
from projectors.process import Conn, Later, ProcessManager

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


class BlobReaper(ProcessManager[str]):
    name = "blob_reaper"

    def __init__(self, blobs: BlobStore, database_url: str, log_end: Callable[[], Awaitable[int]], *,
                 images_projection: str = "images", interval_s: float = 1.0, catch_up_s: float = 10.0,
                 orphan_sweep_s: float = 6 * 3600, orphan_age_s: float = 3600) -> None:
        super().__init__(database_url)
        self.blobs = blobs
        self.log_end = log_end
        self.images_projection = images_projection
        self.interval_s = interval_s
        self.catch_up_s = catch_up_s
        self.orphan_sweep_s = orphan_sweep_s
        self.orphan_age_s = orphan_age_s
        self.deleted = 0  # blobs deleted since start
        self._next_orphan_sweep = 0.0  # the first one runs at start

    @property
    def queue(self) -> Projector:
        return BlobReapQueue()

    async def pending(self, conn: Conn, limit: int = 100) -> Sequence[str]:
        rows = await (await conn.execute(
            "SELECT key FROM public.blob_reap_queue ORDER BY queued_at, key LIMIT %s", (limit,))).fetchall()
        return [str(key) for (key,) in rows]

    def item_key(self, item: str) -> str:
        return item

    async def tick(self, conn: Conn) -> None:
        if time.monotonic() >= self._next_orphan_sweep:
            await self.queue_orphans(conn)
            self._next_orphan_sweep = time.monotonic() + self.orphan_sweep_s

    async def queue_orphans(self, conn: Conn, chunk: int = 1000) -> int:
        """Queue the old image blobs no row of rm.images names; the number queued."""
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

    async def handle(self, conn: Conn, item: str) -> bool:
        lock = (locks.BLOB_KEY, key_lock_id(item))
        got = await (await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", lock)).fetchone()
        if not (got and got[0]):
            return False  # an upload of these bytes is under way: next round
        try:
            end = await self.log_end()  # read under the lock: every upload that used the key is at or below it
            if not await checkpoints.wait_until_projected(conn, [self.images_projection], end, self.catch_up_s):
                raise Later  # the images projection is behind: try again later
            row = await (await conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM {LIVE_SCHEMA}.images WHERE blob_key = %s OR thumbnail_key = %s)",
                (item, item))).fetchone()
            if not (row and row[0]):
                await asyncio.to_thread(self.blobs.delete, item)
                self.deleted += 1
            return True
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s, %s)", lock)

    async def finish(self, conn: Conn, item: str) -> None:
        await conn.execute("DELETE FROM public.blob_reap_queue WHERE key = %s", (item,))
