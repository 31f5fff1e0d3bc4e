"""The one deliberate bridge between synchronous code and asyncio-only nats-py.

The `eventsourcing` library is synchronous; nats-py is asyncio-only. Rather than start an event loop per call
(slow, and one connection per call), each process runs one daemon thread with one asyncio loop and one
NATS connection per server URL, shared by every recorder. Synchronous callers submit coroutines with `run()`
and block on the result. Two rules keep it safe:

- a call that times out cancels its coroutine, so nothing keeps running on the loop on behalf of a caller that
  gave up (whether a write was stored is then unknown: the caller must treat it so);
- code running on the loop thread must never call `run()`: it would wait for itself forever. `run()` refuses.

Reconnection is nats-py's: it retries forever (`max_reconnect_attempts=-1`). While it is down, nothing waits on
it: a call made meanwhile fails at once with `NotConnected` (nothing was sent: publishes are not buffered for a
later reconnect, which would store a write after its caller was told it failed), and a call under way when the
connection drops fails at once with `ConnectionLost` (it may have reached the server: its outcome is unknown).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, TypeVar

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from events.nats_urls import nats_servers, redact_url

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0


class NatsConnectError(ConnectionError):
    """The NATS server could not be reached at start."""


class NotConnected(ConnectionError):
    """The connection to NATS is down (reconnecting): the operation was not sent."""


class ConnectionLost(ConnectionError):
    """The connection to NATS dropped while the operation was under way: it may or may not have taken effect."""


def log_connection_errors(logger: logging.Logger, what: str) -> Callable[[Exception], Awaitable[None]]:
    """An `error_cb` for `nats.connect` that logs one line per error: nats-py's default logs a traceback for
    every failed reconnect attempt, which buries the log while a server restarts."""

    async def error_cb(exc: Exception) -> None:
        logger.warning("%s: NATS connection error: %s", what, str(exc) or type(exc).__name__)

    return error_cb


class NatsBridge:
    """One asyncio loop thread and one NATS connection; `run()` executes coroutines on it synchronously."""

    _shared: ClassVar[dict[str, NatsBridge]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, url: str, *, connect_timeout: float = 10.0, name: str = "aidraw") -> None:
        self.url = url
        self.servers = nats_servers(url)  # one URL or a cluster's, comma-separated (events/nats_urls.py)
        self._pid = os.getpid()
        self._closed = False
        self._closing = False  # close() under way: a disconnect is expected, not worth a warning
        self._down: asyncio.Future[None] | None = None  # resolved when the connection drops (see _guarded)
        self._guard = False  # set once connected: from then on every call is failed fast when NATS is down
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run_loop, name="nats-bridge", daemon=True)
        self._thread.start()
        self._started.wait()
        try:
            self._nc: Client = self.run(self._connect(connect_timeout, name), timeout=connect_timeout + 5)
        except BaseException:
            self._stop_loop()
            raise
        self._js: JetStreamContext = self._nc.jetstream()
        self._guard = True

    @classmethod
    def shared(cls, url: str) -> NatsBridge:
        """The process-wide bridge for `url` (a fresh one in a forked child: threads do not survive fork)."""
        with cls._shared_lock:
            bridge = cls._shared.get(url)
            if bridge is None or bridge._closed or bridge._pid != os.getpid():
                bridge = cls(url)
                cls._shared[url] = bridge
            return bridge

    @property
    def nc(self) -> Client:
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        return self._js

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def closed(self) -> bool:
        return self._closed

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = DEFAULT_TIMEOUT) -> T:
        """Run `coro` on the bridge's loop and return its result.

        Raises TimeoutError (after cancelling the coroutine) when it does not finish within `timeout` seconds,
        and RuntimeError when called from the loop thread itself, which would deadlock.
        """
        if threading.get_ident() == self._thread.ident:
            coro.close()
            raise RuntimeError("NatsBridge.run() called from the bridge's own loop thread: it would deadlock")
        if self._closed or not self._loop.is_running():
            coro.close()
            raise RuntimeError("NatsBridge is closed")
        future = asyncio.run_coroutine_threadsafe(self._guarded(coro) if self._guard else coro, self._loop)
        try:
            done, _ = concurrent.futures.wait([future], timeout=timeout)
        except BaseException:  # KeyboardInterrupt while waiting: do not leave the work running
            future.cancel()
            raise
        if not done:
            future.cancel()
            raise TimeoutError(f"NATS operation did not finish within {timeout:g} s")
        return future.result()

    async def _guarded(self, coro: Coroutine[Any, Any, T]) -> T:
        """`coro`, failed at once when the connection is down or drops before it finishes."""
        if self._down is None or self._down.done():
            if not self._nc.is_connected:
                coro.close()
                raise NotConnected(f"NATS at {redact_url(self.url)} is unreachable (reconnecting)")
            self._down = self._loop.create_future()
        task = asyncio.current_task()
        assert task is not None
        lost = False

        def on_drop(_: asyncio.Future[None]) -> None:
            nonlocal lost
            lost = True
            task.cancel()

        down = self._down
        down.add_done_callback(on_drop)
        try:
            return await coro
        except asyncio.CancelledError:
            if lost:  # the connection dropped, not the caller's timeout
                raise ConnectionLost(f"the connection to NATS at {redact_url(self.url)} dropped during the "
                                     "operation") from None
            raise
        except nats.errors.OutboundBufferLimitError:  # the connection dropped just before a publish: not sent
            raise NotConnected(f"NATS at {redact_url(self.url)} is unreachable (reconnecting)") from None
        finally:
            down.remove_done_callback(on_drop)

    def close(self) -> None:
        """Drain and close the connection, stop the loop thread. Idempotent."""
        if self._closed:
            return
        with self._shared_lock:
            if self._shared.get(self.url) is self:
                del self._shared[self.url]
        self._closing = True
        self._guard = False  # closing must reach nats-py even while it reconnects
        try:
            self.run(self._nc.close(), timeout=10)
        except Exception as exc:  # closing is best effort: the process may be shutting down
            log.warning("closing the NATS connection failed: %s", exc)
        self._closed = True
        self._stop_loop()

    async def _connect(self, timeout: float, name: str) -> Client:
        connected = False
        last_error: list[Exception] = []  # why the first connect has not succeeded yet

        async def error_cb(exc: Exception) -> None:
            if not connected:
                last_error[:] = [exc]  # said once in the NatsConnectError, not once per retry
                return
            log.warning("NATS connection error: %s", exc)

        async def disconnected_cb() -> None:
            if self._down is not None and not self._down.done():
                self._down.set_result(None)  # calls under way fail now rather than at their timeout
            if self._closing:
                return
            log.warning("disconnected from NATS at %s; reconnecting", redact_url(self.url))

        async def reconnected_cb() -> None:
            log.info("reconnected to NATS at %s", redact_url(self.url))

        try:
            # With unlimited reconnect attempts nats-py would retry the first connect forever: bound it.
            client = await asyncio.wait_for(
                nats.connect(
                    self.servers,
                    name=name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    pending_size=0,  # no buffering while reconnecting: a call then fails (NotConnected)
                    connect_timeout=max(1, min(int(timeout), 5)),
                    error_cb=error_cb,
                    disconnected_cb=disconnected_cb,
                    reconnected_cb=reconnected_cb,
                ),
                timeout,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            cause = last_error[0] if last_error else exc
            reason = str(cause) or type(cause).__name__
            if isinstance(cause, ConnectionRefusedError):
                reason = "connection refused: nothing listens there"
            if isinstance(exc, TimeoutError):  # nats-py was still retrying: say for how long, and the last error
                waited = f"no connection within {timeout:g} s"
                reason = f"{waited} ({reason})" if last_error else waited
            raise NatsConnectError(
                f"cannot reach NATS at {redact_url(self.url)}: {reason}. Start the server, or set "
                "AIDRAW_NATS_URL to one that runs."
            ) from exc
        connected = True
        return client

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        self._loop.run_forever()

    def _stop_loop(self) -> None:
        self._closed = True
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if threading.get_ident() != self._thread.ident:
            self._thread.join(timeout=10)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
