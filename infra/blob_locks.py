"""Keeping an upload and the blob reaper from racing over one content-addressed blob.

Blobs are shared by content: a new upload may store bytes that an image being deleted also uses. The upload
stores the blob and then appends its event; the reaper deletes a blob once no row of rm.images uses it. Without
coordination the reaper could delete the blob between the upload's store and its event. So both take a
PostgreSQL advisory lock per key: an upload holds it SHARED from before storing the blob until its event is
appended (uploads never wait for each other), and the reaper holds it EXCLUSIVELY while it checks and deletes.
Whichever comes second sees the other's result: the reaper sees the upload's event (it waits until rm.images
has projected the log up to its end), or the upload stores the bytes again after the reaper removed them.

The reap queue lives in `public` beside the projection checkpoints: it is work to do, not a read model.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from infra import locks

log = logging.getLogger("aidraw.blobs")

LOCK_CLASS = locks.BLOB_KEY  # the first key of every blob lock

QUEUE_DDL = ("CREATE TABLE IF NOT EXISTS public.blob_reap_queue ("
             " key text PRIMARY KEY, queued_at timestamptz NOT NULL DEFAULT now())")


def key_lock_id(key: str) -> int:
    """A 32-bit signed lock id for a key; two keys sharing one only means they wait for each other."""
    return locks.name_id(key)


@asynccontextmanager
async def upload_guard(pool: AsyncConnectionPool, keys: Iterable[str]) -> AsyncIterator[AsyncConnection[Any]]:
    """Hold the keys' locks shared (inside a transaction on a pooled connection) for the body's duration."""
    async with pool.connection() as conn, conn.transaction():
        for key in sorted(set(keys)):
            await conn.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", (LOCK_CLASS, key_lock_id(key)))
        yield conn


async def enqueue_for_reaping(conn: AsyncConnection[Any], keys: Iterable[str]) -> None:
    """Ask the reaper to look at these keys (it deletes only those no image uses)."""
    for key in keys:
        await conn.execute("INSERT INTO public.blob_reap_queue (key) VALUES (%s) ON CONFLICT DO NOTHING", (key,))
