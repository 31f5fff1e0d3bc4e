"""GET /api/blobs/{key}: the stored files (images, thumbnails) of the local blob store.

Keys are content-addressed (the SHA-256 of the bytes), so a key's bytes never change: caches may keep them for a
year (`immutable`), and the key itself is the ETag. Blobs of private images are served to anyone who has the
key, like a capability URL: a key cannot be guessed (256 bits), and only callers who may see the image are given
it (docs/images.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from infra.errors import NotFound
from infra.storage import BlobNotFound, validate_key
from query.services import Blobs

router = APIRouter(tags=["blobs"])

CACHE_FOREVER = "public, max-age=31536000, immutable"


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get("/api/blobs/{key:path}", response_class=Response)
@router.head("/api/blobs/{key:path}", response_class=Response, include_in_schema=False)
async def get_blob(key: str, request: Request, blobs: Blobs) -> Response:
    """A stored file with its content type; 304 when `If-None-Match` names its ETag."""
    try:
        validate_key(key)
    except ValueError:
        raise NotFound("No such file.") from None
    try:
        info = await run_in_threadpool(blobs.stat, key)
    except BlobNotFound:
        raise NotFound("No such file.") from None
    etag = f'"{key}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_FOREVER, "X-Content-Type-Options": "nosniff"}
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(info.size)
    if request.method == "HEAD":
        return Response(headers=headers, media_type=info.content_type)
    try:
        chunks = await run_in_threadpool(blobs.iter_bytes, key)
    except BlobNotFound:  # deleted between the two calls
        raise NotFound("No such file.") from None
    return StreamingResponse(chunks, media_type=info.content_type, headers=headers)
