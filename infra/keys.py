"""The key store in PostgreSQL: per-user keys for sealed personal data, and server-wide secrets.

This is a secrets store, not a read model: the command side writes it directly (a key must exist before the
first event sealed with it is appended), it is never rebuilt from the log (it cannot be: the log holds no
keys), and losing it loses every sealed name, email and password hash. Back it up with the database, and keep
backups no longer than the erasure promise: a deleted key lives on in old backups and WAL until they expire.

Tables (created on first use, schema `secrets`):
    secrets.personal_keys (user_id bigint PRIMARY KEY, key bytea, created_at)
    secrets.server_secrets (name text PRIMARY KEY, secret bytea, created_at)

`PostgresKeyStore` is the command side's (synchronous, its own pool). Projectors read keys through their own
transaction's cursor with `read_personal_key`, so a projector needs no extra connection or setting.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from psycopg_pool import ConnectionPool

from events.personal import KEY_BYTES, new_key
from infra import locks
from infra.pg import open_with_setup

SCHEMA = "secrets"
SETUP = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.personal_keys ("
    " user_id bigint PRIMARY KEY, key bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.server_secrets ("
    " name text PRIMARY KEY, secret bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
]
_SETUP_LOCK = locks.KEY_STORE_SETUP  # concurrent first starts create the tables once


class PostgresKeyStore:
    """events.personal.KeyStore on PostgreSQL. Personal keys are never cached (an erased key must be gone
    everywhere at once); server secrets never change, so they are."""

    def __init__(self, database_url: str, max_size: int = 10) -> None:
        self._pool = ConnectionPool(database_url, min_size=1, max_size=max_size, open=False,
                                    check=ConnectionPool.check_connection)  # survives a PostgreSQL restart
        self._secrets: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def open(self) -> PostgresKeyStore:
        open_with_setup(self._pool, _SETUP_LOCK, SETUP)
        return self

    def close(self) -> None:
        self._pool.close()

    def create_key(self, user_id: int) -> bytes:
        with self._pool.connection() as conn:
            row = conn.execute(
                f"INSERT INTO {SCHEMA}.personal_keys (user_id, key) VALUES (%s, %s)"
                " ON CONFLICT (user_id) DO UPDATE SET key = personal_keys.key RETURNING key",
                (user_id, new_key()),
            ).fetchone()
        assert row is not None
        return bytes(row[0])

    def key(self, user_id: int) -> bytes | None:
        with self._pool.connection() as conn:
            row = conn.execute(f"SELECT key FROM {SCHEMA}.personal_keys WHERE user_id = %s", (user_id,)).fetchone()
        return bytes(row[0]) if row else None

    def forget(self, user_id: int) -> None:
        with self._pool.connection() as conn:
            conn.execute(f"DELETE FROM {SCHEMA}.personal_keys WHERE user_id = %s", (user_id,))

    def server_secret(self, name: str) -> bytes:
        with self._lock:
            found = self._secrets.get(name)
        if found is not None:
            return found
        with self._pool.connection() as conn:
            conn.execute(
                f"INSERT INTO {SCHEMA}.server_secrets (name, secret) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (name, secrets.token_bytes(KEY_BYTES)),
            )
            row = conn.execute(f"SELECT secret FROM {SCHEMA}.server_secrets WHERE name = %s", (name,)).fetchone()
        assert row is not None
        with self._lock:
            self._secrets[name] = bytes(row[0])
        return self._secrets[name]


class TransactionKeyReader:
    """Reads personal keys through a projector's cursor (inside the projector's transaction)."""

    async def key(self, cur: Any, user_id: int) -> bytes | None:
        await cur.execute(f"SELECT key FROM {SCHEMA}.personal_keys WHERE user_id = %s", (user_id,))
        row = await cur.fetchone()
        return bytes(row[0]) if row else None
