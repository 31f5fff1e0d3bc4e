"""Checkpoints: how far each read model has projected the log, stored beside its rows."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection

NOTIFY_CHANNEL = "aidraw_projection"

SETUP = [
    "CREATE TABLE IF NOT EXISTS public.projection_checkpoints ("
    " name text PRIMARY KEY, position bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
]


async def setup(conn: AsyncConnection[Any]) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7263001)")  # concurrent first starts
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
