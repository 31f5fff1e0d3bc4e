"""A bounded pool of image decoders shared by every request of one process.

Decoding an image takes memory in proportion to its pixels, not its bytes: a 131 KB PNG can hold 40 million
pixels. Each decode says its cost up front (`infra.media.decode_cost`, from the header), and runs only once the
pool's memory budget has room for it, on one of a few decoder threads:
- a decode that alone needs more than the whole budget is 413 (fewer pixels would fit);
- one that finds no room within `max_wait_s` is 429 with `Retry-After` (the server is busy decoding);
- one user has at most `per_user` uploads in progress at once (429 beyond), so one client cannot take the pool.
Peak memory for decoding is therefore at most the budget, however many uploads arrive together; the threads are
few, so the memory the C allocator keeps per thread stays bounded too.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from infra.errors import RateLimited, TooLarge

T = TypeVar("T")
MIB = 1024 * 1024


def _mib(size: int) -> str:
    return f"{-(-size // MIB)} MiB"


class DecodePool:
    def __init__(self, memory_bytes: int, workers: int, per_user: int, max_wait_s: float) -> None:
        self.memory_bytes = memory_bytes
        self.per_user = per_user
        self.max_wait_s = max_wait_s
        self.in_use = 0  # bytes reserved by decodes running now
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aidraw-decode")
        self._uploads: Counter[Hashable] = Counter()
        self._room: asyncio.Condition | None = None  # made in the serving event loop, on first use
        self._waking: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def upload_slot(self, user_id: Hashable) -> AsyncIterator[None]:
        """One of the user's `per_user` uploads in progress; 429 when they are all taken."""
        if self._uploads[user_id] >= self.per_user:
            raise RateLimited(f"You have {self.per_user} uploads in progress already; send the next one when one "
                              "of them has been answered.", retry_after=1)
        self._uploads[user_id] += 1
        try:
            yield
        finally:
            self._uploads[user_id] -= 1
            if not self._uploads[user_id]:
                del self._uploads[user_id]

    async def run(self, cost: int, decode: Callable[..., T], *args: Any) -> T:
        """`decode(*args)` on a decoder thread once `cost` bytes of the budget are free; they stay reserved until
        the decode has finished, even when the caller goes away first."""
        if cost > self.memory_bytes:
            raise TooLarge(f"The image needs about {_mib(cost)} of memory to decode; this server decodes at most "
                           f"{_mib(self.memory_bytes)} at a time (AIDRAW_DECODE_MEMORY). Send an image with fewer "
                           "pixels.")
        room = self._room = self._room or asyncio.Condition()
        async with room:
            try:
                await asyncio.wait_for(room.wait_for(lambda: self.in_use + cost <= self.memory_bytes),
                                       self.max_wait_s)
            except TimeoutError:
                raise RateLimited("The server is decoding as many images as its memory allows; try again in a "
                                  "few seconds.", retry_after=max(1, round(self.max_wait_s / 2))) from None
            self.in_use += cost
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, functools.partial(decode, *args))
        future.add_done_callback(lambda _: self._release(cost, room))
        return await asyncio.shield(future)  # a caller that goes away does not end the decode or its reservation

    def _release(self, cost: int, room: asyncio.Condition) -> None:
        self.in_use -= cost

        async def wake() -> None:
            async with room:
                room.notify_all()

        task = asyncio.get_running_loop().create_task(wake())
        self._waking.add(task)  # a reference until it has run
        task.add_done_callback(self._waking.discard)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
