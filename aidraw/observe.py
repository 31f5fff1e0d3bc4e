"""The app's outermost own middleware: read-your-writes bookkeeping, the stale mark, the latency histogram.

Pure ASGI (no BaseHTTPMiddleware: that one runs each request in a task group behind memory streams). It sees the
response's start message on its way out, after the route has run, and:
- records the `X-Event-Sequence` a write answered with for its caller (and for the token a login just issued,
  `request.state.issued_token`), so that caller's next read waits until the write is visible;
- marks an answer given after the read-your-writes bound (`request.state.stale`, query/consistency.py) with
  `X-Consistency: stale`;
- observes `aidraw_http_request_duration_seconds` by method, route template (or "unmatched") and status, timed
  to the response's last body message (background tasks that run after it are not counted).
`request.state` is `scope["state"]`: the routes' `Request.state` and this middleware's see the same dict.
An exception the app raises before it answers propagates untouched, unobserved (the server error middleware
outside answers 500). Websockets and lifespan pass through.
"""

from __future__ import annotations

import time

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aidraw import ops
from aidraw.bootstrap import app_services
from infra.http import SEQUENCE_HEADER
from query.consistency import STALE_HEADER, caller_key, token_caller_key


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = Request(scope)
        status: int | None = None
        observed = False

        def observe() -> None:
            nonlocal observed
            observed = True
            route = scope.get("route")
            ops.REQUEST_LATENCY.labels(scope["method"], getattr(route, "path", "unmatched"),
                                       str(status)).observe(time.perf_counter() - started)

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                seq = headers.get(SEQUENCE_HEADER)
                if seq:
                    sequences = app_services(request).caller_sequences
                    sequences.wrote(caller_key(request), int(seq))
                    issued = getattr(request.state, "issued_token", None)  # a login: its token's reads wait too
                    if issued:
                        sequences.wrote(token_caller_key(issued), int(seq))
                if getattr(request.state, "stale", False):
                    headers[STALE_HEADER] = "stale"
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False) and not observed:
                observe()

        try:
            await self.app(scope, receive, answer)
        finally:
            if status is not None and not observed:  # the body was cut short (a disconnect, a failing stream)
                observe()
