"""Failed logins, counted in a sliding window per account and per client address, shared by every API replica.

Over the limit, a login is answered 429 with Retry-After without checking the password at all, so guessing
stops even for the right password. Unknown accounts are counted like known ones (the answer must not tell
them apart). The failures live in PostgreSQL (`public.login_failures`, an UNLOGGED table: work state, not a read
model, and a crash may forget it), so N replicas behind a load balancer allow N times nothing, and a restart of
one forgets nothing. Only digests are kept: no account name, email or address is stored. Time is the
database's, so replicas with skewed clocks agree.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from psycopg_pool import ConnectionPool

from infra.pg import open_with_setup

SETUP = [
    "CREATE UNLOGGED TABLE IF NOT EXISTS public.login_failures ("
    " scope text NOT NULL, key text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE INDEX IF NOT EXISTS login_failures_key ON public.login_failures (scope, key, at)",
    "CREATE INDEX IF NOT EXISTS login_failures_at ON public.login_failures (at)",
]
_SETUP_LOCK = 7263020
ACCOUNT, ADDRESS = "account", "address"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class LoginThrottle:
    def __init__(self, database_url: str, per_account: int, per_address: int, window_s: float,
                 max_size: int = 4) -> None:
        self.limits = {ACCOUNT: per_account, ADDRESS: per_address}
        self.window_s = window_s
        self._pool = ConnectionPool(database_url, min_size=1, max_size=max_size, open=False,
                                    kwargs={"autocommit": True})

    def open(self) -> LoginThrottle:
        open_with_setup(self._pool, _SETUP_LOCK, SETUP)
        return self

    def close(self) -> None:
        self._pool.close()

    @staticmethod
    def _keys(identifier: str, address: str) -> dict[str, str]:
        return {ACCOUNT: _digest(identifier.casefold()), ADDRESS: _digest(address)}

    def retry_after(self, identifier: str, address: str) -> int:
        """Seconds until this account and address may try again; 0 when they may now."""
        wait = 0.0
        with self._pool.connection() as conn:
            for scope, key in self._keys(identifier, address).items():
                # The limit-th most recent failure in the window: the wait ends when it leaves the window.
                row: Any = conn.execute(
                    "SELECT extract(epoch FROM at + make_interval(secs => %s) - clock_timestamp())"
                    " FROM public.login_failures"
                    " WHERE scope = %s AND key = %s AND at > clock_timestamp() - make_interval(secs => %s)"
                    " ORDER BY at DESC LIMIT 1 OFFSET %s",
                    (self.window_s, scope, key, self.window_s, self.limits[scope] - 1)).fetchone()
                if row is not None:
                    wait = max(wait, float(row[0]))
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def failed(self, identifier: str, address: str) -> None:
        with self._pool.connection() as conn:
            keys = self._keys(identifier, address)
            conn.execute("INSERT INTO public.login_failures (scope, key) VALUES (%s, %s), (%s, %s)",
                         (ACCOUNT, keys[ACCOUNT], ADDRESS, keys[ADDRESS]))
            # Forget what has left the window (a few rows each time: failures pay for their own cleanup).
            conn.execute("DELETE FROM public.login_failures WHERE ctid IN (SELECT ctid FROM public.login_failures"
                         " WHERE at < clock_timestamp() - make_interval(secs => %s) LIMIT 100)", (self.window_s,))

    def succeeded(self, identifier: str) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM public.login_failures WHERE scope = %s AND key = %s",
                         (ACCOUNT, _digest(identifier.casefold())))
