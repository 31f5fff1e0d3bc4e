"""Failed logins, counted in a sliding window per account-and-address and per client address, shared by every API
replica; over a limit, logins slow down rather than lock (OWASP's authentication guidance).

Why this shape: a limit per account alone lets anyone who knows a user's name lock that user out (ten wrong
passwords from anywhere, and the right one waits for the window). Counting per account AND address means a
stranger's failures never hold back the user's own logins from their own address; the per-address count stops
one address spraying guesses over many accounts. Past a limit the next try must wait 1 s after the latest
failure, then 2, 4, ... up to MAX_DELAY_S: guessing slows to a crawl, while someone sharing the address (a NAT)
waits at most a minute, never the whole window. A try made during the wait is answered 429 with Retry-After
without checking the password and is not counted. Guessing one account from many addresses is bounded by the
password hashing cost and each address's own slow-down; stopping that needs a second factor, not a lockout.

The failures live in PostgreSQL (`public.login_failures`, an UNLOGGED table: work state, not a read model, and a
crash may forget it), so N replicas behind a load balancer allow N times nothing, and a restart of one forgets
nothing. Only digests are kept: no account name, email or address is stored. Time is the database's, so
replicas with skewed clocks agree. The client address is the one infra/proxies.py trusts.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from psycopg_pool import ConnectionPool

from infra import locks
from infra.pg import open_with_setup

SETUP = [
    "CREATE UNLOGGED TABLE IF NOT EXISTS public.login_failures ("
    " scope text NOT NULL, key text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    "CREATE INDEX IF NOT EXISTS login_failures_key ON public.login_failures (scope, key, at)",
    "CREATE INDEX IF NOT EXISTS login_failures_at ON public.login_failures (at)",
]
_SETUP_LOCK = locks.LOGIN_THROTTLE_SETUP
PAIR, ADDRESS = "account-address", "address"
MAX_DELAY_S = 60.0


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def slow_down(failures: int, limit: int) -> float:
    """Seconds the next try waits after the latest failure: none within the limit, then 1, 2, 4, ... capped."""
    if failures < limit:
        return 0.0
    return min(2.0 ** min(failures - limit, 30), MAX_DELAY_S)


class LoginThrottle:
    def __init__(self, database_url: str, per_account_and_address: int, per_address: int, window_s: float,
                 max_size: int = 4) -> None:
        self.limits = {PAIR: per_account_and_address, ADDRESS: per_address}
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
        return {PAIR: _digest(f"{identifier.casefold()}\n{address}"), ADDRESS: _digest(address)}

    def retry_after(self, identifier: str, address: str) -> int:
        """Seconds until this account may be tried again from this address; 0 when it may now."""
        wait = 0.0
        with self._pool.connection() as conn:
            for scope, key in self._keys(identifier, address).items():
                row: Any = conn.execute(
                    "SELECT count(*), extract(epoch FROM clock_timestamp() - max(at)) FROM public.login_failures"
                    " WHERE scope = %s AND key = %s AND at > clock_timestamp() - make_interval(secs => %s)",
                    (scope, key, self.window_s)).fetchone()
                failures, since_last = int(row[0]), float(row[1] or 0.0)
                wait = max(wait, slow_down(failures, self.limits[scope]) - since_last)
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def failed(self, identifier: str, address: str) -> None:
        with self._pool.connection() as conn:
            keys = self._keys(identifier, address)
            conn.execute("INSERT INTO public.login_failures (scope, key) VALUES (%s, %s), (%s, %s)",
                         (PAIR, keys[PAIR], ADDRESS, keys[ADDRESS]))
            # Forget what has left the window (a few rows each time: failures pay for their own cleanup).
            conn.execute("DELETE FROM public.login_failures WHERE ctid IN (SELECT ctid FROM public.login_failures"
                         " WHERE at < clock_timestamp() - make_interval(secs => %s) LIMIT 100)", (self.window_s,))

    def succeeded(self, identifier: str, address: str) -> None:
        """A right password clears this account's count from this address (not the address's own count)."""
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM public.login_failures WHERE scope = %s AND key = %s",
                         (PAIR, self._keys(identifier, address)[PAIR]))
