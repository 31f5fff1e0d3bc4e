"""A real WebSocket client (websockets' sync client) for the live feed's tests, and publishers that speak the
feed's two subjects the way the projectors and the runner do."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import nats
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from events.progress import Progress, progress_subject
from tests.system import System


def ws_url(system: System, path: str, **query: str) -> str:
    tail = "&".join(f"{k}={v}" for k, v in query.items())
    return system.url.replace("http://", "ws://") + path + (f"?{tail}" if tail else "")


def open_socket(system: System, path: str, token: str | None = None, header: bool = False,
                max_queue: int | None = 16, **query: str) -> ClientConnection:
    """`max_queue`: frames the client's reader thread buffers before it stops reading the socket (1: a slow
    client whose TCP window fills; None: one that drains everything at once)."""
    headers = {"Authorization": f"Bearer {token}"} if token and header else None
    if token and not header:
        query["token"] = token
    sock = None
    if max_queue == 1:  # a small receive buffer too: the server meets backpressure soon
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", system.port))
    return connect(ws_url(system, path, **query), additional_headers=headers, open_timeout=10, max_queue=max_queue,
                   sock=sock, compression=None)


def receive(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    return dict(json.loads(ws.recv(timeout=timeout)))


def close_code(ws: ClientConnection, timeout: float = 10) -> int:
    """Read until the server closes; its close code (messages on the way are skipped)."""
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code


def publish(system: System, messages: list[tuple[str, bytes]]) -> None:
    async def run() -> None:
        nc = await nats.connect(system.nats_url)
        for subject, data in messages:
            await nc.publish(subject, data)
        await nc.flush()
        await nc.close()

    asyncio.run(run())


def progress(system: System, updates: list[Progress], pause_s: float = 0.0) -> None:
    """Publish as the runner does, `pause_s` apart (0: a burst, which the feed may coalesce)."""
    async def run() -> None:
        nc = await nats.connect(system.nats_url)
        for u in updates:
            await nc.publish(progress_subject(system.prefix, u.collection, u.id), u.encode())
            if pause_s:
                await nc.flush()
                await asyncio.sleep(pause_s)
        await nc.flush()
        await nc.close()

    asyncio.run(run())
