"""The decoder pool: a shared memory budget, few decoder threads, and uploads per user (infra/decode_pool.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from infra.decode_pool import DecodePool
from infra.errors import RateLimited, TooLarge

MIB = 1024 * 1024


class Watch:
    """Decodes that take a while and record how much of the budget ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.threads: set[str] = set()

    def decode(self, cost: int, seconds: float = 0.05) -> Callable[[], int]:
        def work() -> int:
            with self.lock:
                self.running += cost
                self.most = max(self.most, self.running)
                self.threads.add(threading.current_thread().name)
            time.sleep(seconds)
            with self.lock:
                self.running -= cost
            return cost
        return work


def test_decodes_together_never_exceed_the_budget_and_use_few_threads() -> None:
    async def main() -> tuple[list[int], Watch]:
        pool = DecodePool(100 * MIB, workers=3, per_user=32, max_wait_s=30)
        watch = Watch()
        costs = [30 * MIB, 60 * MIB, 45 * MIB, 100 * MIB, 10 * MIB] * 6
        done = await asyncio.gather(*(pool.run(cost, watch.decode(cost)) for cost in costs))
        assert pool.in_use == 0
        pool.close()
        return done, watch

    done, watch = asyncio.run(main())
    assert len(done) == 30
    assert 0 < watch.most <= 100 * MIB
    assert len(watch.threads) <= 3


def test_a_decode_larger_than_the_whole_budget_is_413_naming_the_setting() -> None:
    async def main() -> None:
        pool = DecodePool(64 * MIB, workers=1, per_user=2, max_wait_s=1)
        with pytest.raises(TooLarge, match="AIDRAW_DECODE_MEMORY"):
            await pool.run(64 * MIB + 1, lambda: None)
        pool.close()

    asyncio.run(main())


def test_no_room_within_the_wait_is_429_with_retry_after() -> None:
    async def main() -> None:
        pool = DecodePool(64 * MIB, workers=2, per_user=2, max_wait_s=0.2)
        watch = Watch()
        slow = asyncio.ensure_future(pool.run(50 * MIB, watch.decode(50 * MIB, seconds=1.0)))
        await asyncio.sleep(0.05)
        with pytest.raises(RateLimited) as caught:
            await pool.run(20 * MIB, watch.decode(20 * MIB))
        assert int(caught.value.headers["Retry-After"]) >= 1
        assert await pool.run(10 * MIB, watch.decode(10 * MIB)) == 10 * MIB  # what fits beside it runs
        await slow
        pool.close()

    asyncio.run(main())


def test_a_caller_that_goes_away_keeps_its_reservation_until_the_decode_ends() -> None:
    async def main() -> None:
        pool = DecodePool(64 * MIB, workers=2, per_user=2, max_wait_s=5)
        finished = threading.Event()

        def decode() -> None:
            time.sleep(0.3)
            finished.set()

        caller = asyncio.ensure_future(pool.run(60 * MIB, decode))
        await asyncio.sleep(0.05)
        caller.cancel()
        await asyncio.sleep(0.05)
        assert pool.in_use == 60 * MIB  # the thread still holds the pixels
        started = time.monotonic()
        await pool.run(60 * MIB, lambda: None)
        assert finished.is_set() and time.monotonic() - started > 0.1
        pool.close()

    asyncio.run(main())


def test_each_user_has_a_few_uploads_in_progress_and_no_more() -> None:
    async def main() -> None:
        pool = DecodePool(64 * MIB, workers=1, per_user=2, max_wait_s=1)
        async with pool.upload_slot(7), pool.upload_slot(7):
            with pytest.raises(RateLimited, match="2 uploads in progress"):
                async with pool.upload_slot(7):
                    pass
            async with pool.upload_slot(8):  # another user is not held up
                pass
        async with pool.upload_slot(7), pool.upload_slot(7):  # free again once answered
            pass
        pool.close()

    asyncio.run(main())
