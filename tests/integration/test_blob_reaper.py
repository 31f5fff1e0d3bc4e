"""The blob reaper against a real PostgreSQL: it deletes only unused blobs, never while an upload of the same
bytes holds the key's lock, and waits for the images projection to reach the log's end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from infra.blob_locks import QUEUE_DDL, enqueue_for_reaping, upload_guard
from infra.storage.local import LocalBlobStore
from projectors import checkpoints
from projectors.blob_reaper import BlobReaper
from projectors.postgres.images import DDL
from tests.image_files import picture


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def prepare(database_url: str, images_position: int) -> psycopg.AsyncConnection:
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    await conn.execute("CREATE SCHEMA IF NOT EXISTS rm")
    for statement in DDL:
        await conn.execute(statement.replace("{s}", "rm"))
    await conn.execute(QUEUE_DDL)
    await checkpoints.setup(conn)
    async with conn.transaction():
        await checkpoints.lock_and_read(conn, "images")
        await checkpoints.store(conn, "images", images_position)
    return conn


async def image_row(conn: psycopg.AsyncConnection, key: str) -> None:
    now = datetime.now(UTC)
    await conn.execute("INSERT INTO rm.images (id, user_id, width, height, blob_key, content_type, created_at,"
                       " updated_at, version) VALUES (1, 1, 1, 1, %s, 'image/png', %s, %s, 1)", (key, now, now))


async def queued(conn: psycopg.AsyncConnection) -> int:
    row = await (await conn.execute("SELECT count(*) FROM public.blob_reap_queue")).fetchone()
    return int(row[0]) if row else 0


def reaper(store: LocalBlobStore, database_url: str, log_end: int) -> BlobReaper:
    async def end() -> int:
        return log_end

    return BlobReaper(store, database_url, end, catch_up_s=0.3)


def test_an_unused_blob_is_deleted_and_a_used_one_kept(store: LocalBlobStore, database_url: str) -> None:
    async def scenario() -> None:
        conn = await prepare(database_url, images_position=10)
        unused, used = store.put(picture(), "image/png"), store.put(picture(), "image/png")
        await image_row(conn, used)
        await enqueue_for_reaping(conn, [unused, used])
        assert await reaper(store, database_url, 10).sweep(conn) == 1
        assert not store.exists(unused) and store.exists(used)
        assert await queued(conn) == 0
        await enqueue_for_reaping(conn, [unused])  # again: harmless
        assert await reaper(store, database_url, 10).sweep(conn) == 1
        await conn.close()

    asyncio.run(scenario())


def test_a_key_locked_by_an_upload_is_left_for_a_later_round(store: LocalBlobStore, database_url: str) -> None:
    async def scenario() -> None:
        conn = await prepare(database_url, images_position=10)
        key = store.put(picture(), "image/png")
        await enqueue_for_reaping(conn, [key])
        async with AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False) as pool:
            async with upload_guard(pool, [key]):
                assert await reaper(store, database_url, 10).sweep(conn) == 0
                assert store.exists(key) and await queued(conn) == 1
            assert await reaper(store, database_url, 10).sweep(conn) == 1
        assert not store.exists(key)
        await conn.close()

    asyncio.run(scenario())


def test_nothing_is_deleted_while_the_images_projection_is_behind_the_log(store: LocalBlobStore,
                                                                          database_url: str) -> None:
    async def scenario() -> None:
        conn = await prepare(database_url, images_position=5)
        key = store.put(picture(), "image/png")
        await enqueue_for_reaping(conn, [key])
        # An upload of these bytes may be at sequence 6..9, not projected yet.
        assert await reaper(store, database_url, 9).sweep(conn) == 0
        assert store.exists(key) and await queued(conn) == 1
        await conn.close()

    asyncio.run(scenario())
