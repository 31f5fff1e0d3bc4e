"""Small PostgreSQL helpers shared by the stores the API writes directly (the key store, the login throttle)."""

from __future__ import annotations

from collections.abc import Sequence

from psycopg_pool import ConnectionPool


def open_with_setup(pool: ConnectionPool, lock: int, statements: Sequence[str], timeout: float = 20) -> None:
    """Open `pool` and run its `CREATE ... IF NOT EXISTS` statements once, under an advisory lock: processes
    starting together must not create the same things at the same time (IF NOT EXISTS alone races)."""
    pool.open(wait=True, timeout=timeout)
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]
