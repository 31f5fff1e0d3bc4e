"""Reading a multipart image upload and turning the file into what is stored.

The body is read within its byte limit by command/multipart.py (413 as soon as it passes the limit). The form's
fields are checked strictly (unknown fields, repeated single fields and non-boolean `public` are 422), and nothing
is stored before the whole upload was checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from command.multipart import read_form
from infra.blob_locks import enqueue_for_reaping, upload_guard
from infra.errors import Invalid, TooLarge, Unavailable
from infra.http import read_bool
from infra.media import THUMBNAIL_CONTENT_TYPE, CheckedImage, MediaRejected, decode_cost, decode_image
from infra.schemas_images import UploadFields
from infra.storage import BlobStore, BlobStoreError, key_for_bytes

log = logging.getLogger("aidraw.images")
T = TypeVar("T")

SINGLE = ("name", "prompt", "negative_prompt", "public")


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    fields: UploadFields


@dataclass(frozen=True)
class PreparedImage:
    checked: CheckedImage
    thumbnail: bytes
    thumbnail_type: str
    descriptor: list[float]

    @property
    def image_key(self) -> str:
        return key_for_bytes(self.checked.clean_bytes, self.checked.content_type)

    @property
    def thumbnail_key(self) -> str:
        return key_for_bytes(self.thumbnail, self.thumbnail_type)


def _too_large(max_bytes: int) -> TooLarge:
    # The body may pass `max_bytes` by command/multipart.py FIELDS_LIMIT (framing and text fields): an allowance,
    # so the answer names the documented limit, AIDRAW_UPLOAD_MAX_BYTES.
    return TooLarge(f"The upload is too large: an image file may have at most {max_bytes} bytes.")


def _flag(raw: str) -> bool:
    value = read_bool(raw.strip())
    if value is not None:
        return value
    raise Invalid("public must be true or false.", field="body.public")


def _fields(form: Any) -> UploadFields:
    values: dict[str, Any] = {}
    for key in set(form.keys()) - {"file"}:
        items = form.getlist(key)
        if any(not isinstance(item, str) for item in items):
            raise Invalid(f"{key} must be a text field, not a file.", field=f"body.{key}")
        if key in SINGLE:
            if len(items) > 1:
                raise Invalid(f"{key} may be given once.", field=f"body.{key}")
            values[key] = _flag(items[0]) if key == "public" else items[0]
        elif key == "tags":  # comma-separated and/or repeated
            values[key] = [name.strip() for item in items for name in item.split(",") if name.strip()]
        else:
            raise Invalid(f"Unknown field {key!r}; an upload takes file, name, prompt, negative_prompt, tags "
                          "and public.", field=f"body.{key}")
    try:
        return UploadFields.model_validate(values)
    except ValidationError as exc:
        errors = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Invalid("Invalid upload fields: " + ", ".join(".".join(e["loc"][1:]) for e in errors) + ".",
                      errors=errors) from None


async def read_upload(request: Request, max_bytes: int) -> Upload:
    """The upload's file and fields, checked; 413 over `max_bytes`, 422 for anything malformed."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise Invalid("Send generation parameters as application/json, or upload an image as multipart/form-data "
                      "with a `file` field.", field="body")
    form = await read_form(request, max_bytes, lambda: _too_large(max_bytes))
    try:
        files = form.getlist("file")
        if len(files) != 1 or not isinstance(files[0], UploadFile):
            raise Invalid("Send exactly one image in the `file` field.", field="body.file")
        fields = _fields(form)
        data = await files[0].read()
    finally:
        await form.close()
    if len(data) > max_bytes:
        raise TooLarge(f"The image has {len(data)} bytes; at most {max_bytes} are accepted.")
    if not data:
        raise Invalid("The file is empty.", field="body.file")
    return Upload(data=data, filename=files[0].filename or "", fields=fields)


def default_name(filename: str) -> str:
    """The file's name without folders or extension, as a name when none was given."""
    return PurePosixPath(filename.replace("\\", "/")).stem.strip()[:200]


@contextmanager
def _as_http() -> Iterator[None]:
    """MediaRejected as the HTTP answer: 413 too large, 422 not a usable image."""
    try:
        yield
    except MediaRejected as exc:
        if exc.status == 413:
            raise TooLarge(f"The image is too large: {exc.reason}.") from None
        raise Invalid(f"The file is not a usable image: {exc.reason}.", field="body.file") from None


def decoding_cost(data: bytes, max_bytes: int, max_pixels: int) -> int:
    """The memory `prepare_image` takes at its peak, from the header (413/422 for what the header shows)."""
    with _as_http():
        return decode_cost(data, max_bytes=max_bytes, max_pixels=max_pixels)


def prepare_image(data: bytes, max_bytes: int, max_pixels: int) -> PreparedImage:
    """Decode and check the file, re-encode it without metadata, make the thumbnail and descriptor (CPU work:
    run it on the decode pool, infra/decode_pool.py, reserving `decoding_cost`)."""
    with _as_http():
        decoded = decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    return PreparedImage(checked=decoded.checked, thumbnail=decoded.thumbnail, thumbnail_type=THUMBNAIL_CONTENT_TYPE,
                         descriptor=decoded.descriptor)


def _put(blobs: BlobStore, prepared: PreparedImage) -> None:
    try:
        blobs.put(prepared.checked.clean_bytes, prepared.checked.content_type)
        blobs.put(prepared.thumbnail, prepared.thumbnail_type)
    except (BlobStoreError, OSError) as exc:
        raise Unavailable("The image could not be stored just now; try again.") from exc


async def store_with_blobs(pool: AsyncConnectionPool, blobs: BlobStore, prepared: PreparedImage,
                           append: Callable[[], T]) -> T:
    """Store the blobs, then append the event (`append`, run in a worker thread), under the keys' upload locks
    (infra/blob_locks.py). If anything fails after a blob may have been stored, the keys go to the reaper's
    queue: it deletes them only if no image uses them, so that is safe even when the append's outcome is
    unknown (the event may exist after all)."""
    keys = (prepared.image_key, prepared.thumbnail_key)
    failure: Exception | None = None
    result: T | None = None
    try:
        async with upload_guard(pool, keys) as conn:
            try:
                await run_in_threadpool(_put, blobs, prepared)
                result = await run_in_threadpool(append)
            except Exception as exc:  # re-raised below, once the queue entry is committed
                failure = exc
                await enqueue_for_reaping(conn, keys)
    except (psycopg.Error, PoolTimeout) as exc:
        if failure is not None:
            log.warning("could not queue blobs of a failed upload for the reaper",
                        extra={"keys": list(keys), "error": str(exc)})
            raise failure from None
        raise Unavailable("The database is not reachable just now; try again.") from exc
    if failure is not None:
        raise failure
    assert result is not None
    return result
