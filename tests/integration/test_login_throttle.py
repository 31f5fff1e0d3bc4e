"""The login throttle on a real PostgreSQL: failures counted in a sliding window per account-and-address and per
address, shared by every API replica (two throttles on one database stand for two replicas); past a limit the
wait grows after each failure instead of locking the account."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from infra.ratelimit import MAX_DELAY_S, LoginThrottle, slow_down


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[LoginThrottle, LoginThrottle]]:
    one = LoginThrottle(database_url, per_account_and_address=3, per_address=5, window_s=3).open()
    two = LoginThrottle(database_url, per_account_and_address=3, per_address=5, window_s=3).open()
    yield one, two
    one.close()
    two.close()


def test_the_wait_doubles_past_the_limit_and_is_capped() -> None:
    assert [slow_down(n, 3) for n in range(7)] == [0, 0, 0, 1, 2, 4, 8]
    assert slow_down(10_000, 3) == MAX_DELAY_S


def test_failures_on_one_replica_slow_the_account_from_that_address_on_another(
        replicas: tuple[LoginThrottle, LoginThrottle]) -> None:
    one, two = replicas
    for throttle in (one, two, one):
        assert throttle.retry_after("Ann", "10.0.0.1") == 0
        throttle.failed("Ann", "10.0.0.1")
    assert two.retry_after("ann", "10.0.0.1") == 1  # same account in another case, same address: 1 s
    assert two.retry_after("ann", "10.0.0.2") == 0  # the account's owner elsewhere is not locked out
    assert two.retry_after("bob", "10.0.0.1") == 0
    two.succeeded("ANN", "10.0.0.1")  # a success clears the account's count from that address
    assert one.retry_after("ann", "10.0.0.1") == 0


def test_the_address_limit_counts_every_account_and_the_window_slides(
        replicas: tuple[LoginThrottle, LoginThrottle], database_url: str) -> None:
    one, two = replicas
    for n in range(5):
        (one if n % 2 else two).failed(f"nobody-{n}", "10.0.0.9")
    assert one.retry_after("carol", "10.0.0.9") >= 1  # carol never failed; her address did
    assert one.retry_after("carol", "10.0.0.10") == 0
    time.sleep(3.2)
    assert two.retry_after("carol", "10.0.0.9") == 0  # the failures left the window
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT scope || ' ' || key FROM public.login_failures").fetchall()
    assert stored and not any("nobody" in row[0] or "10.0.0" in row[0] for row in stored)  # digests only
