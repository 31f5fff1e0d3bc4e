"""One socket's bounded, coalescing send queue: a slow client gets fewer messages, never a stale state.

- A state message (a change the GET shows, the final message) is never dropped or merged.
- Progress is coalesced per object: a newer progress message replaces the one still waiting (latest wins). The
  waiting one's preview rides along only while the queue is short; otherwise previews are what goes first.
- A state message supersedes the progress of its object still waiting (the state carries the progress).
- Over `limit` entries (a socket on all the caller's tasks), the oldest waiting progress goes.
- Over `4 * limit` (state messages a client has not read for a long time), `overflowed` turns true: the socket
  closes with 1013 and the client reconnects to the current state (nothing it missed matters then).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass
class _Entry:
    object_id: int
    message: dict[str, Any]
    progress: bool


class Outbox:
    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._entries: deque[_Entry] = deque()
        self._waiting_progress: dict[int, _Entry] = {}
        self._ready = asyncio.Event()
        self.dropped = 0  # progress messages (and previews) coalesced away
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._entries)

    def put_state(self, object_id: int, message: dict[str, Any]) -> None:
        stale = self._waiting_progress.pop(object_id, None)
        if stale is not None:
            self._entries.remove(stale)
            self.dropped += 1
        self._entries.append(_Entry(object_id, message, progress=False))
        if len(self._entries) > 4 * self.limit:
            self.overflowed = True
        self._ready.set()

    def put_progress(self, object_id: int, message: dict[str, Any]) -> None:
        waiting = self._waiting_progress.get(object_id)
        if waiting is not None:
            old_preview = waiting.message["data"].get("preview")
            if old_preview is not None and "preview" not in message["data"] and len(self._entries) * 2 < self.limit:
                message["data"]["preview"] = old_preview
            waiting.message = message
            self.dropped += 1
        else:
            entry = _Entry(object_id, message, progress=True)
            self._entries.append(entry)
            self._waiting_progress[object_id] = entry
            while len(self._entries) > self.limit and self._drop_oldest_progress():
                pass
        self._ready.set()

    def _drop_oldest_progress(self) -> bool:
        for entry in self._entries:
            if entry.progress:
                self._entries.remove(entry)
                del self._waiting_progress[entry.object_id]
                self.dropped += 1
                return True
        return False

    async def get(self) -> dict[str, Any]:
        while not self._entries:
            self._ready.clear()
            await self._ready.wait()
        entry = self._entries.popleft()
        if entry.progress:
            del self._waiting_progress[entry.object_id]
        return entry.message
