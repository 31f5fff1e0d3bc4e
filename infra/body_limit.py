"""A cap on request bodies other than multipart uploads (JSON bodies): 413 problem+json past the limit.

A declared `Content-Length` over the limit is answered at once, before any of the body is read. A body without
one (chunked) is counted as the app reads it; the read that passes the limit raises `BodyTooLarge`, an
HTTPException, so the route stops there and the one error handler (infra/errors.py) answers 413.
Multipart bodies sent to an upload route pass untouched: they have their own limits, counted while the upload is
parsed (`POST /api/images`: AIDRAW_UPLOAD_MAX_BYTES, command/image_upload.py; `POST /api/models`:
AIDRAW_MODEL_UPLOAD_MAX_BYTES, command/model_upload.py). Anywhere else a multipart body is capped like any other:
no other route reads one.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.errors import problem


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"A request body may have at most {max_bytes} bytes; send a smaller one (images are "
                              "uploaded as multipart/form-data, which has its own limit).")


class BodyLimit:
    """Pure ASGI (it must see the body's chunks, and must not buffer them)."""

    def __init__(self, app: ASGIApp, max_bytes: int,
                 uploads: frozenset[tuple[str, str]] = frozenset({("POST", "/api/images"),
                                                                  ("POST", "/api/models")})) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if ((scope["method"], scope["path"]) in self.uploads
                and headers.get("content-type", "").lower().startswith("multipart/form-data")):
            await self.app(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            too_large = BodyTooLarge(self.max_bytes)
            await problem(413, "Content Too Large", too_large.detail)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)
