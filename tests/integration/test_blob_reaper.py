"""The blob reaper against a real PostgreSQL: it deletes only unused blobs, never while an upload of the same
bytes holds the key's lock, and waits for the images projection to reach the log's end."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from aidraw.services import NatsServer, PostgresServer
from infra.blob_locks import QUEUE_DDL, enqueue_for_reaping, upload_guard
from infra.storage.local import LocalBlobStore
from projectors import checkpoints
from projectors.blob_reaper import BlobReaper
from projectors.postgres.image_vectors import VECTOR_EXTENSION
from projectors.postgres.images import DDL
from tests.accounts import new_account, system_with
from tests.image_files import picture, upload
from tests.image_support import eventually


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def prepare(database_url: str, images_position: int) -> psycopg.AsyncConnection:
    conn = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    await conn.execute("CREATE SCHEMA IF NOT EXISTS rm")
    for statement in (*VECTOR_EXTENSION, *DDL):  # the images table's embedding column has pgvector's type
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


async def deleted_by_sweep(store: LocalBlobStore, database_url: str, log_end: int,
                           conn: psycopg.AsyncConnection) -> int:
    """One round of a fresh reaper over the queue: the number of blobs it deleted."""
    the_reaper = reaper(store, database_url, log_end)
    await the_reaper.sweep(conn)
    return the_reaper.deleted


def test_an_unused_blob_is_deleted_and_a_used_one_kept(store: LocalBlobStore, database_url: str) -> None:
    async def scenario() -> None:
        conn = await prepare(database_url, images_position=10)
        unused, used = store.put(picture(), "image/png"), store.put(picture(), "image/png")
        await image_row(conn, used)
        await enqueue_for_reaping(conn, [unused, used])
        assert await deleted_by_sweep(store, database_url, 10, conn) == 1
        assert not store.exists(unused) and store.exists(used)
        assert await queued(conn) == 0
        await enqueue_for_reaping(conn, [unused])  # again: harmless
        assert await deleted_by_sweep(store, database_url, 10, conn) == 1
        await conn.close()

    asyncio.run(scenario())


def test_a_key_locked_by_an_upload_is_left_for_a_later_round(store: LocalBlobStore, database_url: str) -> None:
    async def scenario() -> None:
        conn = await prepare(database_url, images_position=10)
        key = store.put(picture(), "image/png")
        await enqueue_for_reaping(conn, [key])
        async with AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False) as pool:
            async with upload_guard(pool, [key]):
                assert await deleted_by_sweep(store, database_url, 10, conn) == 0
                assert store.exists(key) and await queued(conn) == 1
            assert await deleted_by_sweep(store, database_url, 10, conn) == 1
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
        assert await deleted_by_sweep(store, database_url, 9, conn) == 0
        assert store.exists(key) and await queued(conn) == 1
        await conn.close()

    asyncio.run(scenario())


def _age(store: LocalBlobStore, key: str, seconds: float) -> None:
    """Make a blob look written `seconds` ago."""
    path = store.root / key
    then = path.stat().st_mtime - seconds
    os.utime(path, (then, then))


def test_old_blobs_no_image_names_are_swept_and_nothing_else(store: LocalBlobStore, database_url: str) -> None:
    async def scenario() -> None:
        conn = await prepare(database_url, images_position=10)
        orphan, young, used = (store.put(picture(), "image/png") for _ in range(3))
        thumb_of_used = store.put(picture(), "image/webp")
        await image_row(conn, used)
        await conn.execute("UPDATE rm.images SET thumbnail_key = %s", (thumb_of_used,))
        for key in (orphan, used, thumb_of_used):
            _age(store, key, 7200)
        the_reaper = reaper(store, database_url, 10)
        assert await the_reaper.queue_orphans(conn) == 1  # the old one no image names; not the young one
        await the_reaper.sweep(conn)
        assert the_reaper.deleted == 1
        assert not store.exists(orphan)
        assert store.exists(young) and store.exists(used) and store.exists(thumb_of_used)
        assert await the_reaper.queue_orphans(conn) == 0  # nothing left to find
        await conn.close()

    asyncio.run(scenario())


def test_an_orphan_found_before_anything_was_projected_waits_for_the_images_projection(
        store: LocalBlobStore, database_url: str) -> None:
    async def scenario() -> None:
        conn = await prepare(database_url, images_position=0)  # migrated: rm.images exists, nothing projected
        key = store.put(picture(), "image/png")
        _age(store, key, 7200)
        the_reaper = reaper(store, database_url, 10)
        assert await the_reaper.queue_orphans(conn) == 1  # no row names it yet...
        await the_reaper.sweep(conn)
        assert the_reaper.deleted == 0 and store.exists(key)  # ...but an upload at 1..10 may, once projected
        assert await queued(conn) == 1
        await conn.close()

    asyncio.run(scenario())


def test_a_running_system_sweeps_a_blob_left_by_a_killed_upload(nats_server: NatsServer,
                                                                 postgres_server: PostgresServer,
                                                                 servers_dir: Path) -> None:
    with system_with(nats_server, postgres_server, servers_dir, AIDRAW_BLOB_SWEEP_INTERVAL="0.5",
                     AIDRAW_BLOB_ORPHAN_AGE="60") as system:
        owner = new_account(system, "sweeper")
        with system.client(owner.token) as client:
            kept = upload(client)
            assert kept.status_code == 201, kept.text
        store = LocalBlobStore(system.data_dir / "blobs")
        left = store.put(picture(), "image/png")  # what an API process killed before its event leaves
        for key in [left, *(p.relative_to(store.root).as_posix() for p in store.root.glob("??/??/*"))]:
            _age(store, key, 7200)
        assert eventually(lambda: not store.exists(left), timeout=30)
        with system.client(owner.token) as client:
            image = client.get(f"/api/images/{kept.json()['id']}").json()
            assert client.get(image["url"]).status_code == 200  # the used blob stays
            assert client.get(image["thumbnail_url"]).status_code == 200
