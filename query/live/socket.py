"""One watching socket: its first state, then a message on every change, in its own bounded outbox.

Three tasks per socket: `_reload` turns the hub's marks into GETs as the caller (query/live/reads.py) and queues
what changed; `_send` writes the outbox to the client (a slow client holds up only its own); `_receive` notices
the client leaving. A close travels through the outbox behind the final message, so it is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import FastAPI
from starlette.websockets import WebSocket, WebSocketDisconnect

from events.progress import Progress
from events.store.protocol import EventStore
from infra.actor import Actor
from query.live.hub import Hub, Key
from query.live.outbox import Outbox
from query.live.reads import get_as, was_deleted

NORMAL, TRY_AGAIN = 1000, 1013
UNAUTHORIZED, FORBIDDEN, NOT_FOUND, TOO_MANY = 4401, 4403, 4404, 4429
CLOSE_FOR_STATUS = {401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND}
# A task in one of these has ended: its socket sends it and closes. A model closes when training ends while
# watched (success, error, or a cancel back to the status it had); a socket on an idle model stays open like any
# object's.
FINAL = {"tasks": {"success", "error", "canceled"}}
TRAINING = {"ready", "waiting", "running"}
_CLOSE = "__close__"


def message(object_id: int, body: dict[str, Any] | None, sequence: int, status: str | None = None,
            **extra: Any) -> dict[str, Any]:
    shown = body or {}
    return {"id": object_id, "status": status or shown.get("status"), "progress": shown.get("progress"),
            "data": body, "sequence": sequence, **extra}


class LiveSocket:
    def __init__(self, ws: WebSocket, hub: Hub, actor: Actor, collection: str, object_id: int | None,
                 queue_limit: int, event_log: EventStore, session_check: Any) -> None:
        self.ws, self.hub, self.actor, self.collection = ws, hub, actor, collection
        self.object_id = object_id
        self.all_tasks = object_id is None
        self.outbox = Outbox(queue_limit)
        self.bodies: dict[int, dict[str, Any]] = {}  # the last state sent, per object
        self.sequences: dict[int, int] = {}
        self.ticks: dict[int, int] = {}
        self._dirty: dict[Key, int] = {}
        self._wake = asyncio.Event()
        self._session_check = session_check
        self._event_log = event_log
        self._app: FastAPI = ws.scope["app"]

    # -- the hub's side (called from the NATS callback: no I/O here) --
    def changed(self, key: Key, sequence: int) -> None:
        self._dirty[key] = max(self._dirty.get(key, 0), sequence)
        self._wake.set()

    def progressed(self, update: Progress) -> None:
        body = self.bodies.get(update.id)
        if body is None or update.tick <= self.ticks.get(update.id, 0):
            return  # not (yet) visible to this caller, or a duplicate
        self.ticks[update.id] = update.tick
        status = body.get("status")
        if status in ("waiting", "ready"):  # a runner publishes progress only while it runs: the state lags behind
            status = "running"
        data = {**body, "status": status, "progress": update.progress, "step": update.step, "steps": update.steps}
        if update.preview is not None:
            data["preview"] = update.preview
        if update.detail is not None:  # training: loss and learning rate of the step
            data["detail"] = update.detail
        self.outbox.put_progress(update.id, {"id": update.id, "status": status,
                                             "progress": update.progress, "data": data,
                                             "sequence": self.sequences.get(update.id, 0), "tick": update.tick})

    # -- the socket's side --
    def close(self, code: int) -> None:
        self.outbox.put_state(-1, {_CLOSE: code})

    def _state(self, object_id: int, body: dict[str, Any], sequence: int) -> None:
        # A reload reads the latest rows, which may be ahead of the announcement that woke it (a later change
        # whose announcement is still on its way, or a waiting task's place in the queue): a changed state always
        # gets a sequence above the last one sent, so that a client dropping messages "not above the last seen"
        # never drops a state.
        previous = self.sequences.get(object_id)
        sequence = sequence if previous is None else max(sequence, previous + 1)
        self.sequences[object_id] = sequence
        self.bodies[object_id] = body
        self.ticks.pop(object_id, None)
        self.outbox.put_state(object_id, message(object_id, body, sequence))
        status = body.get("status")
        training_ended = self.collection == "models" and self._was_training and status not in TRAINING
        if not self.all_tasks and (status in FINAL.get(self.collection, ()) or training_ended):
            self.close(NORMAL)
        self._was_training = status in TRAINING

    _was_training = False

    async def _get(self, path: str, query: str = "") -> tuple[int, Any]:
        return await get_as(self._app, self.ws.scope.get("state", {}), self.actor, path, query)

    async def open(self, sequence: int) -> bool:
        """Queue the current state; False (and a close queued) when the caller may not watch."""
        if self.object_id is None:
            status, page = await self._get("/api/tasks", f"user={self.actor.user_id}&page_size=100")
            if status != 200:
                self.close(CLOSE_FOR_STATUS.get(status, NOT_FOUND))
                return False
            for listed in reversed(page.get("list", [])):  # each as its detail GET shows it, like every change
                status, body = await self._get(f"/api/tasks/{int(listed['id'])}")
                if status == 200:
                    self._state(int(body["id"]), body, sequence)
            return True
        status, body = await self._get(f"/api/{self.collection}/{self.object_id}")
        if status != 200:
            self.close(CLOSE_FOR_STATUS.get(status, NOT_FOUND))
            return False
        if body.get("status") in FINAL.get(self.collection, ()) and self.collection == "tasks":
            self._state(self.object_id, body, sequence)  # a finished task: its final state, then 1000
            return False
        self._state(self.object_id, body, sequence)
        return True

    async def _reload_one(self, key: Key, sequence: int) -> None:
        collection, object_id = key
        known = object_id in self.bodies
        status, body = await self._get(f"/api/{collection}/{object_id}")
        if status == 200:
            if self.all_tasks and body.get("user_id") != self.actor.user_id:
                return
            if body != self.bodies.get(object_id):
                self._state(object_id, body, sequence)
            return
        if status == 404 and self.all_tasks:
            if known:  # gone or hidden: the last word on it, the socket stays for the others
                del self.bodies[object_id]
                self.outbox.put_state(object_id, message(object_id, None, sequence, status="deleted"))
            return
        if status == 404 and await asyncio.to_thread(was_deleted, self._event_log, collection, object_id):
            self.outbox.put_state(object_id, message(object_id, None, max(sequence, self.sequences.get(
                object_id, 0)), status="deleted"))
            self.close(NORMAL)
            return
        self.close(CLOSE_FOR_STATUS.get(status, NOT_FOUND))

    async def _reload(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            dirty, self._dirty = self._dirty, {}
            for key, sequence in dirty.items():
                await self._reload_one(key, sequence)

    async def _send(self) -> None:
        while True:
            item = await self.outbox.get()
            if _CLOSE in item:
                await self.ws.close(item[_CLOSE])
                return
            if self.actor.session_id is not None and not await self.hub.session_live(self.actor.session_id,
                                                                                       self._session_check):
                await self.ws.close(UNAUTHORIZED)  # logged out, expired, password changed, user deleted
                return
            await self.ws.send_text(json.dumps(item, separators=(",", ":"), default=str))
            if self.outbox.overflowed:
                await self.ws.close(TRY_AGAIN, "too slow: reconnect for the current state")
                return

    async def _receive(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while (await self.ws.receive())["type"] != "websocket.disconnect":
                pass

    async def run(self, watching: bool) -> None:
        tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._receive())]
        if watching:
            tasks.append(asyncio.create_task(self._reload()))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
