"""The live feed's one NATS subscription per API process, and the registry from watched objects to sockets.

Every API replica subscribes itself to `<prefix>_changed.>`, which carries both kinds of change:
- `<prefix>_changed.<collection>`: a projector committed changes to these ids, up to stream sequence N
  (events/changes.py): each socket watching one of them reloads it as its caller's GET shows it.
- `<prefix>_changed.<collection>.<id>`: progress of a running object (events/progress.py), forwarded as is.
The NATS callback only marks sockets (no I/O), so one slow socket never delays the others.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from events.changes import ObjectsChanged, changes_prefix
from events.progress import Progress

log = logging.getLogger("aidraw.live")

Key = tuple[str, int]  # (collection, id)
SESSION_CHECK_S = 1.0  # a session's liveness is looked up at most this often per process


class Watcher(Protocol):
    """One socket's side of the hub (query/live/socket.py)."""

    all_tasks: bool  # WS /api/tasks: every task of its caller

    def changed(self, key: Key, sequence: int) -> None: ...
    def progressed(self, update: Progress) -> None: ...


class Hub:
    def __init__(self, prefix: str, max_sockets_per_user: int) -> None:
        self.prefix = changes_prefix(prefix)
        self.max_sockets_per_user = max_sockets_per_user
        self._by_key: dict[Key, set[Watcher]] = defaultdict(set)
        self._all_tasks: set[Watcher] = set()
        self._per_user: dict[str, int] = defaultdict(int)
        self._subscription: Subscription | None = None
        self._sessions: dict[int, tuple[float, bool]] = {}

    @property
    def subscriptions(self) -> int:
        return 0 if self._subscription is None else 1

    @property
    def sockets(self) -> int:
        return sum(self._per_user.values())

    async def start(self, nc: NATS) -> None:
        self._subscription = await nc.subscribe(f"{self.prefix}.>", cb=self._on_message, pending_msgs_limit=100_000)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    def admit(self, user: str) -> bool:
        """Count a socket for `user` (an id, or the client address when anonymous); False over the limit."""
        if self._per_user[user] >= self.max_sockets_per_user:
            return False
        self._per_user[user] += 1
        return True

    def release(self, user: str) -> None:
        self._per_user[user] -= 1
        if self._per_user[user] <= 0:
            del self._per_user[user]

    def watch(self, watcher: Watcher, keys: list[Key]) -> None:
        for key in keys:
            self._by_key[key].add(watcher)
        if watcher.all_tasks:
            self._all_tasks.add(watcher)

    def unwatch(self, watcher: Watcher, keys: list[Key]) -> None:
        for key in keys:
            watchers = self._by_key.get(key)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._by_key[key]
        self._all_tasks.discard(watcher)

    async def session_live(self, session_id: int, check: Callable[[int], Awaitable[bool]]) -> bool:
        """Whether the session is live, looked up at most once a `SESSION_CHECK_S` for all its sockets."""
        now = time.monotonic()
        cached = self._sessions.get(session_id)
        if cached is not None and now - cached[0] < SESSION_CHECK_S:
            return cached[1]
        live = await check(session_id)
        if len(self._sessions) > 10_000:
            self._sessions.clear()
        self._sessions[session_id] = (now, live)
        return live

    async def _on_message(self, msg: Msg) -> None:
        try:
            tokens = msg.subject[len(self.prefix) + 1:].split(".")
            if len(tokens) == 1:
                change = ObjectsChanged.decode(msg.data)
                for object_id in change.ids:
                    self._notify(change.collection, object_id, lambda w, k: w.changed(k, change.sequence))
            elif len(tokens) == 2:
                update = Progress.decode(msg.data)
                self._notify(update.collection, update.id, lambda w, k: w.progressed(update))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("a malformed live message was ignored", extra={"subject": msg.subject, "error": str(exc)})

    def _notify(self, collection: str, object_id: int, tell: Callable[[Watcher, Key], None]) -> None:
        key = (collection, object_id)
        for watcher in list(self._by_key.get(key, ())):
            tell(watcher, key)
        if collection == "tasks":
            for watcher in list(self._all_tasks):
                tell(watcher, key)
