"""GET /api/models/{id}/file: a model's safetensors file, for its owner (and admins), or anyone if it is public.

Streamed from the blob store, never read whole. The ETag is the content hash in the blob key (plus `-kohya` for
the converted LoRA), so `If-None-Match` answers 304; `Cache-Control: private, no-cache` because visibility can
change while the bytes cannot. `?format=kohya` gives a diffusers-layout LoRA in kohya's key layout (what A1111 and
ComfyUI load): a new header over the same bytes and one alpha per module appended (infra/model_files.py); a LoRA
that is kohya's already is sent as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from infra.auth import CurrentActor
from infra.authz import visible_sql
from infra.errors import Invalid, NotFound
from infra.http import ObjectId
from infra.model_files import InvalidModelFile, header_bytes_needed, kohya_rewrite, read_header
from infra.storage import BlobNotFound, BlobStore, validate_key
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.services import Blobs

router = APIRouter(tags=["models"])

FILE_ANSWERS: dict[int | str, dict[str, object]] = {200: {
    "content": {"application/x-safetensors": {"schema": {"type": "string", "format": "binary"}}},
    "description": "The model's file."}, 304: {"description": "Not modified (`If-None-Match`)."}}


def disposition(name: str) -> str:
    """`attachment` with the model's name as `<name>.safetensors`: an ASCII fallback and the UTF-8 original."""
    plain = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip(" .") or "model"
    return f'attachment; filename="{plain}.safetensors"; filename*=UTF-8\'\'{quote(name + ".safetensors", safe="")}'


def _read(blobs: BlobStore, key: str, start: int, end: int) -> bytes:
    return b"".join(blobs.iter_bytes(key, start, end))


def _kohya(blobs: BlobStore, key: str, size: int) -> tuple[bytes, int, bytes] | None:
    """(new header, where the data starts, bytes to append); None when the file is kohya's already."""
    head = _read(blobs, key, 0, min(size, 8))
    head += _read(blobs, key, len(head), header_bytes_needed(head))
    header = read_header(head, size)
    if all(name.startswith(("lora_unet_", "lora_te_", "lora_te1_")) for name in header):
        return None
    new_head, trailer = kohya_rewrite(header)
    return new_head, len(head), trailer


def _chunks(blobs: BlobStore, key: str, before: bytes, start: int, after: bytes) -> Iterator[bytes]:
    if before:
        yield before
    yield from blobs.iter_bytes(key, start)
    if after:
        yield after


@router.get("/api/models/{model_id}/file", response_class=Response, responses=FILE_ANSWERS)
async def download_model(model_id: ObjectId, request: Request, pool: Pool, actor: CurrentActor, blobs: Blobs,
                         _: Consistent, format: Literal["original", "kohya"] = Query(
                             "original", description="`kohya`: a LoRA in kohya's key layout (A1111, ComfyUI)")
                         ) -> Response:
    """The model's `.safetensors` file (404 when the caller may not see the model or it has no file yet)."""
    visible, params = visible_sql(actor, owner_col="m.user_id", public_col="m.public")
    row = await fetch_one(pool, f"SELECT m.name, m.type, m.model_path FROM rm.models m WHERE m.id = %s AND {visible}",
                          (model_id, *params))
    if row is None:
        raise NotFound(f"No model with id {model_id}.")
    key = row["model_path"]
    if not key:
        raise NotFound(f"Model {model_id} has no file yet: it is trained, or uploaded, first.")
    if format == "kohya" and row["type"] != "lora":
        raise Invalid(f"format=kohya is for LoRA models; model {model_id} is a {row['type']}.", field="query.format")
    try:
        info = await run_in_threadpool(blobs.stat, validate_key(key))
        kohya = await run_in_threadpool(_kohya, blobs, key, info.size) if format == "kohya" else None
    except BlobNotFound:
        raise NotFound(f"Model {model_id}'s file is missing from storage.") from None
    except InvalidModelFile as exc:
        raise Invalid(f"This LoRA cannot be given in kohya's layout: {exc}.", field="query.format") from None
    before, start, after = kohya if kohya else (b"", 0, b"")
    digest = key.rsplit("/", 1)[-1].split(".", 1)[0]
    etag = f'"{digest}-kohya"' if kohya else f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff",
               "Content-Disposition": disposition(str(row["name"]))}
    if etag in [tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(len(before) + info.size - start + len(after))
    return StreamingResponse(_chunks(blobs, key, before, start, after), media_type="application/x-safetensors",
                             headers=headers)
