"""The query side's connection pool to the read models (PostgreSQL)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from query.services import QuerySide


def make_pool(url: str, max_size: int = 20) -> AsyncConnectionPool:
    # check: a connection is tried before it is handed out, so a restarted PostgreSQL costs no failed query.
    return AsyncConnectionPool(url, min_size=2, max_size=max_size, open=False,
                               kwargs={"row_factory": dict_row, "autocommit": True},
                               check=AsyncConnectionPool.check_connection)


async def get_pool(services: QuerySide) -> AsyncConnectionPool:  # async: no thread hop (query/services.py)
    return services.pool


Pool = Annotated[AsyncConnectionPool, Depends(get_pool)]


async def fetch_all(pool: AsyncConnectionPool, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        return list(await cur.fetchall())  # type: ignore[arg-type]


async def fetch_one(pool: AsyncConnectionPool, sql: str, params: Any = ()) -> dict[str, Any] | None:
    async with pool.connection() as conn:
        cur = await conn.execute(sql, params)
        row = await cur.fetchone()
        return row  # type: ignore[return-value]
