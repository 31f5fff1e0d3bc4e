"""The runner's reports, appended as events of its own `server` aggregate (events/runs.py) through an
AsyncEventStore. One writer per aggregate (a fresh id per runner start) and one append at a time (a lock), so
the versions rise in the order the reports were made and no append conflicts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from events.base import Changed
from events.codec import mapper
from events.ids import aggregate_uuid, new_id
from events.runs import RunnerStarted
from events.store.protocol import AsyncEventStore


class ReportLog:
    def __init__(self, store: AsyncEventStore) -> None:
        self.store = store
        self.server_id = new_id()
        self._uuid = aggregate_uuid("server", self.server_id)
        self._version = 0
        self._lock = asyncio.Lock()

    async def register(self, name: str, device: str, capabilities: list[str], version: str) -> None:
        # The command side folds these events into command/servers.py `Server` (named here by topic only).
        await self._append(RunnerStarted, originator_topic="command.servers:Server", name=name, device=device,
                           capabilities=capabilities, software_version=version)

    async def report(self, kind: type[Changed], **fields: Any) -> None:
        await self._append(kind, **fields)

    async def _append(self, kind: type[Any], **fields: Any) -> None:
        async with self._lock:
            version = self._version + 1
            event = kind(originator_id=self._uuid, originator_version=version,
                         timestamp=dt.datetime.now(dt.UTC), **fields)
            await self.store.insert_events([mapper().to_stored_event(event)])
            self._version = version
