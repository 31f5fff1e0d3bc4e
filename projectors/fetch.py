"""Pulling batches from a JetStream consumer, fast and without waiting for full batches.

nats-py's `PullSubscription.fetch` hands messages over one task switch at a time (about 33k msg/s here); a core
subscription on an inbox that collects deliveries in its callback reaches about 80k msg/s. This is that: one
`CONSUMER.MSG.NEXT` request (a long poll for up to `batch` messages) is kept open, deliveries are collected as
they stream in, and `fetch` hands over what has arrived as soon as the flow pauses, so one event is projected at
once while a backlog still goes in large batches. Delivery mistakes cannot corrupt a read model: the runner
applies only the exact next sequence after its checkpoint and repositions otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

PAUSE_S = 0.002  # a gap this long in the deliveries ends a batch


class BatchFetcher:
    def __init__(self, nc: Client, stream: str, consumer: str) -> None:
        self._nc = nc
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._prefix = nc.new_inbox()
        self._request = 0
        self._open = False  # a pull request is still being answered
        self._remaining = 0
        self._buffer: list[Msg] = []
        self._arrived = asyncio.Event()
        self._sub: Any = None

    async def start(self) -> BatchFetcher:
        self._sub = await self._nc.subscribe(f"{self._prefix}.*", cb=self._on_message,
                                             pending_msgs_limit=200_000, pending_bytes_limit=512 * 1024 * 1024)
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Msg) -> None:
        if not msg.data and msg.headers and "Status" in msg.headers:
            # 404 no messages, 408 request expired, 409 consumer changed: the end of a request. Deliveries keep
            # their own subject, but a status comes on the inbox, so a late one of an earlier request is known.
            if msg.subject == f"{self._prefix}.{self._request}":
                self._open = False
                self._arrived.set()
            return
        self._buffer.append(msg)
        self._remaining -= 1
        if self._remaining <= 0:
            self._open = False
        self._arrived.set()

    async def _wait(self, seconds: float) -> bool:
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), max(seconds, 0.0))
            return True
        except TimeoutError:
            return False

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """What has arrived, up to about `batch` messages; waits up to `timeout` seconds for the first one."""
        if not self._open and not self._buffer:
            self._request += 1
            self._open, self._remaining = True, batch
            payload = json.dumps({"batch": batch, "expires": int(timeout * 1e9)}).encode()
            await self._nc.publish(self._api, payload, reply=f"{self._prefix}.{self._request}")
        deadline = time.monotonic() + timeout + 1.0
        while not self._buffer and self._open:
            if not await self._wait(deadline - time.monotonic()):
                self._open = False  # the answer got lost; the next fetch asks again
                break
        while self._open and len(self._buffer) < batch and await self._wait(PAUSE_S):
            pass  # still streaming in: let the batch grow
        got, self._buffer = self._buffer, []
        return got
