"""Which runners are alive now: one process's mirror of the runners' heartbeat bucket (events/heartbeats.py).

A watch on the bucket keeps the latest entry of every runner in memory, so a servers list, a task's waiting
reason or a delete's online check costs no round trip to NATS. An entry counts as alive while the server still
holds it (the TTL ends it, and the watch hears the expiry marker) and this process heard from it within the TTL
(a second guard, measured on this process's own clock, for a watch that missed a marker while reconnecting).
Both the command side (delete: 409 while online) and the query side (the list, waiting reasons) read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from events.heartbeats import Heartbeat, ensure_heartbeats

log = logging.getLogger("aidraw.presence")
RESTART_PAUSE_S = 1.0


@dataclass(frozen=True)
class Seen:
    beat: Heartbeat
    heard_at: float  # time.monotonic() of this process when the entry arrived


class RunnerPresence:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[int, Seen] = {}
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()  # the bucket's entries were read once (tests)

    async def start(self, js: JetStreamContext, stream: str, replicas: int) -> None:
        kv = await ensure_heartbeats(js, stream, self.ttl_s, replicas)
        self._task = asyncio.ensure_future(self._follow(kv))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def alive(self, server_id: int) -> Heartbeat | None:
        """The runner's latest heartbeat while it is alive; None when it is offline."""
        seen = self._seen.get(server_id)
        if seen is None or time.monotonic() - seen.heard_at > self.ttl_s:
            return None
        return seen.beat

    def everyone(self) -> dict[int, Heartbeat]:
        """Every runner alive now, by server id."""
        return {server_id: beat for server_id in list(self._seen) if (beat := self.alive(server_id)) is not None}

    def is_online(self, server_id: int) -> bool:
        return self.alive(server_id) is not None

    def serving(self, capability: str) -> int:
        """How many runners alive now take work of `capability` (a draining runner takes none)."""
        return sum(1 for beat in self.everyone().values()
                   if beat.status != "draining" and capability in beat.capabilities)

    async def _follow(self, kv: KeyValue) -> None:
        """Watch the bucket. Live runners put every third of the TTL, so a watch silent for a whole TTL is
        watched afresh (it reads every current entry again): a watch that stalled across a NATS restart costs
        at most one TTL of wrong answers."""
        while True:
            watcher = None
            self._seen = {k: seen for k, seen in self._seen.items() if self.alive(k) is not None}
            try:
                watcher = await kv.watchall()
                while True:
                    try:
                        entry = await watcher.updates(timeout=self.ttl_s)
                    except nats.errors.TimeoutError:
                        break
                    if entry is None:  # the entries there were at the start have all come
                        self.synced.set()
                        continue
                    self._take(entry.key, entry.value, entry.operation)
            except asyncio.CancelledError:
                raise
            except Exception:  # NATS away: watch again; entries unheard of for a TTL count as offline meanwhile
                log.exception("heartbeat watch restarting")
                await asyncio.sleep(RESTART_PAUSE_S)
            finally:
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()

    def _take(self, key: str, value: bytes | None, operation: str | None) -> None:
        if not key.isdigit():
            return
        server_id = int(key)
        if operation in (KV_DEL, KV_PURGE) or not value:
            self._seen.pop(server_id, None)
            return
        beat = Heartbeat.decode(value)
        if beat is not None and beat.server_id == server_id:
            self._seen[server_id] = Seen(beat, time.monotonic())
