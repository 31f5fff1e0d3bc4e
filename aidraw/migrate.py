"""The migration step (`aidraw migrate`): creates every schema the system reads and writes in PostgreSQL — the
checkpoints, the personal-key store, every read model's tables in `rm`, the process managers' queues — so that
everything exists before any API, projector or process manager starts. `aidraw run`, `aidraw projector` and the
test fixtures run it first; it is idempotent and safe to run from several processes at once.

A read model's shape never changes by ALTER: a new shape is a rebuild (`aidraw rebuild NAME`), which builds the
new tables beside the live ones and swaps them in.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from aidraw.roles import PROJECTORS
from infra import locks
from infra.keys import SETUP as KEY_STORE_SETUP
from projectors import checkpoints
from projectors.account_deletion import AccountDeletionQueue
from projectors.base import LIVE_SCHEMA, Projector
from projectors.blob_reaper import BlobReapQueue
from projectors.postgres.sink import create_schema
from projectors.postgres.views import ViewsOfDeletedImages, ViewsProjector
from projectors.training import TrainingRequestQueue


def schema_owners() -> list[Projector]:
    """Every projection whose tables the migration creates: the read models (PROJECTORS), views, and the
    process managers' queue projections."""
    return [*PROJECTORS, ViewsProjector(), ViewsOfDeletedImages(), BlobReapQueue(), AccountDeletionQueue(),
            TrainingRequestQueue()]


async def migrate(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await _migrate(conn)


async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    await checkpoints.setup(conn)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (locks.KEY_STORE_SETUP,))
        for statement in KEY_STORE_SETUP:
            await conn.execute(statement)  # type: ignore[arg-type]
    for projector in schema_owners():
        await create_schema(conn, projector, LIVE_SCHEMA)


def migrate_sync(database_url: str) -> None:
    asyncio.run(migrate(database_url))
