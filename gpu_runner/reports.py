"""The runner's reports, appended as events of its own `server` aggregate (events/runs.py) through an
AsyncEventStore. One append at a time (a lock), so the versions rise in the order the reports were made.

The runner is not the aggregate's only writer: an admin may append a drain or a resume (events/servers.py).
`sync` reads what others appended since the runner's last known version (the runner's heartbeat loop calls it
every second, gpu_runner/presence.py) and folds it into `draining`; an append that finds a newer version in the
log (an admin's event came in between) syncs and tries again with the next version.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from eventsourcing.persistence import IntegrityError

from events.base import Changed
from events.codec import mapper
from events.ids import aggregate_uuid, new_id
from events.runs import RunnerStarted
from events.store.protocol import AsyncEventStore

APPEND_TRIES = 5
_DRAIN, _RESUME = "ServerDrainRequested", "ServerResumed"


class ReportLog:
    def __init__(self, store: AsyncEventStore) -> None:
        self.store = store
        self.server_id = new_id()
        self._uuid = aggregate_uuid("server", self.server_id)
        self._version = 0
        self._lock = asyncio.Lock()
        self.draining = False  # an admin asked this runner to take no more work (events/servers.py)

    async def register(self, name: str, device: str, capabilities: list[str], version: str,
                       memory_bytes: int | None = None) -> None:
        # The command side folds these events into command/servers.py `Server` (named here by topic only).
        await self._append(RunnerStarted, originator_topic="command.servers:Server", name=name, device=device,
                           capabilities=capabilities, software_version=version, memory_bytes=memory_bytes)

    async def report(self, kind: type[Changed], **fields: Any) -> None:
        await self._append(kind, **fields)

    async def sync(self) -> bool:
        """Fold what others appended to this runner's aggregate; whether it is draining now."""
        async with self._lock:
            await self._sync()
        return self.draining

    async def _sync(self) -> None:
        for stored in await self.store.select_events(self._uuid, gt=self._version):
            kind = stored.topic.rsplit(":", 1)[-1]
            if kind in (_DRAIN, _RESUME):
                self.draining = kind == _DRAIN
            self._version = max(self._version, stored.originator_version)

    async def _append(self, kind: type[Any], **fields: Any) -> None:
        async with self._lock:
            for attempt in range(APPEND_TRIES):
                version = self._version + 1
                event = kind(originator_id=self._uuid, originator_version=version,
                             timestamp=dt.datetime.now(dt.UTC), **fields)
                try:
                    await self.store.insert_events([mapper().to_stored_event(event)])
                except IntegrityError:  # an admin's event took this version: learn it, and take the next
                    if attempt + 1 == APPEND_TRIES:
                        raise
                    await self._sync()
                    continue
                self._version = version
                return
