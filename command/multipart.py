"""Reading a multipart upload within a byte limit, shared by image and model uploads.

The body is read through a byte counter, so an upload over the limit is refused with 413 as soon as it passes the
limit, with or without a Content-Length. `max_bytes` is the file's documented limit; the body may pass it by
FIELDS_LIMIT (multipart framing and the text fields), an internal allowance, so `too_large` names the documented
one. A form that cannot be read is 422.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from infra.errors import Invalid, TooLarge

FIELDS_LIMIT = 64 * 1024  # all text fields together: names, prompts and tags are far smaller


async def _counted(request: Request, limit: int, too_large: Callable[[], TooLarge]) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise too_large()
        yield chunk


async def read_form(request: Request, max_bytes: int, too_large: Callable[[], TooLarge]) -> FormData:
    """The form with at most one file; the caller closes it (`await form.close()`)."""
    limit = max_bytes + FIELDS_LIMIT
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large()
    parser = MultiPartParser(request.headers, _counted(request, limit, too_large), max_files=1, max_fields=64,
                             max_part_size=FIELDS_LIMIT)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise Invalid(f"The multipart body cannot be read: {exc.message}", field="body") from None
