"""Failed logins, counted in a sliding window per account and per client address (in this API process).

Over the limit, a login is answered 429 with Retry-After without checking the password at all, so guessing
stops even for the right password. Unknown accounts are counted like known ones (the answer must not tell
them apart). Counters live in memory: each API replica counts on its own, and a restart forgets them.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindow:
    """At most `limit` events per key within `window_s` seconds; bounded memory (least recent keys go)."""

    def __init__(self, limit: int, window_s: float, capacity: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._events.get(key)
        if found is None:
            return deque()
        while found and found[0] <= now - self.window_s:
            found.popleft()
        return found

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        with self._lock:
            now = self._clock()
            recent = self._recent(key, now)
            if len(recent) < self.limit:
                return 0
            return max(1, math.ceil(recent[len(recent) - self.limit] + self.window_s - now))

    def record(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            recent = self._recent(key, now)
            recent.append(now)
            self._events[key] = recent
            self._events.move_to_end(key)
            while len(self._events) > self._capacity:
                self._events.popitem(last=False)

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)


class LoginThrottle:
    def __init__(self, per_account: int, per_address: int, window_s: float) -> None:
        self.accounts = SlidingWindow(per_account, window_s)
        self.addresses = SlidingWindow(per_address, window_s)

    @staticmethod
    def _account(identifier: str) -> str:
        return hashlib.sha256(identifier.casefold().encode()).hexdigest()  # no emails kept in memory

    def retry_after(self, identifier: str, address: str) -> int:
        return max(self.accounts.retry_after(self._account(identifier)), self.addresses.retry_after(address))

    def failed(self, identifier: str, address: str) -> None:
        self.accounts.record(self._account(identifier))
        self.addresses.record(address)

    def succeeded(self, identifier: str) -> None:
        self.accounts.clear(self._account(identifier))
