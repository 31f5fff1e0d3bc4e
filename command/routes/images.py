"""POST (multipart upload, or a JSON generation request) / PATCH / DELETE /api/images."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from command.accounts import shown_name
from command.app import CommandApp
from command.generation import request_generation
from command.image_upload import decoding_cost, default_name, prepare_image, read_upload, store_with_blobs
from command.images import MAX_NAME, MAX_PROMPT, Image, NewImage, change_image, clean_text, delete_image, upload_image
from command.personal import PersonalData
from command.routes.account_deps import Personal
from command.routes.deps import Blobs, Commands, CommandSide, IdempotencyKey
from command.routes.idempotent import created_again
from command.routes.tasks import task_out
from command.tag_refs import clean_tag_names, tag_names
from command.tasks import Task
from events.images import SHOWN_FIELDS
from events.store.protocol import DuplicateRequest
from infra.auth import RequiredUser
from infra.errors import Invalid, unreadable_json
from infra.http import ObjectId, written
from infra.schemas_images import ImagePatch, ImageUser, ImageWritten
from infra.schemas_tasks import GenerationIn, TaskOut, inline_schema
from infra.storage import BlobStore

router = APIRouter(tags=["images"])

UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "PNG, JPEG or WebP"},
        "name": {"type": "string", "maxLength": 200, "description": "default: the file's name"},
        "prompt": {"type": "string", "maxLength": 4000},
        "negative_prompt": {"type": "string", "maxLength": 4000},
        "tags": {"type": "string", "description": "tag names, comma-separated; the field may repeat"},
        "public": {"type": "boolean", "default": True},
    }}}, "application/json": {"schema": inline_schema(GenerationIn)}}}}
GENERATION_ANSWER: dict[int | str, dict[str, Any]] = {
    202: {"model": TaskOut, "description": "A JSON generation request was accepted: the task (waiting)."},
    429: {"description": "Too many unfinished tasks: wait for some to finish or cancel some."},
}


def image_out(app: CommandApp, personal: PersonalData, blobs: BlobStore, image: Image, likes: int | None
              ) -> ImageWritten:
    """The answer to a write, from the command side's own aggregates: the image, its tags' names and its
    owner's name (the user's aggregate). The like count lives in the likes read model, not in any aggregate:
    a new image's is 0; a change, or an upload repeated with its Idempotency-Key, answers null (GET the image
    for it)."""
    shown = {name: getattr(image, name) for name in SHOWN_FIELDS}  # the upload's fields, as stored
    return ImageWritten(
        id=image.number, **shown, url=blobs.url(image.blob_key),
        thumbnail_url=blobs.url(image.thumbnail_key) if image.thumbnail_key else None,
        tags=tag_names(app, image.tag_ids), likes=likes,
        user=ImageUser(id=image.user_id, name=shown_name(app, personal, image.user_id)),
        created_at=image.created_on, updated_at=image.modified_on)


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


async def _generation_request(request: Request) -> GenerationIn:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"byte 0x{raw[exc.start]:02x} at position {exc.start} is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise _Unreadable(str(exc).split(":", 1)[0][:200] or "invalid syntax") from None
    try:
        return GenerationIn.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        raise RequestValidationError(errors, body=body) from None


class _Unreadable(Exception):
    pass


async def _generate(request: Request, app: CommandApp, blobs: BlobStore, actor: RequiredUser,
                    key: IdempotencyKey) -> Response:
    try:
        body = await _generation_request(request)
    except _Unreadable as exc:
        return unreadable_json(str(exc))
    try:
        task, seq = await run_in_threadpool(request_generation, app, actor, body, blobs, key)
    except DuplicateRequest as dup:
        task, seq = await run_in_threadpool(created_again, app, Task, "task", actor, dup, key)
    out = await run_in_threadpool(task_out, app, task)
    answer = JSONResponse(jsonable_encoder(out), status_code=202, headers={"Location": f"/api/tasks/{task.number}"})
    written(answer, seq)
    return answer


@router.post("/api/images", status_code=201, response_model=ImageWritten, openapi_extra=UPLOAD_BODY,
             responses=GENERATION_ANSWER)
async def post_image(request: Request, response: Response, app: Commands, services: CommandSide,
                     personal: Personal, actor: RequiredUser, key: IdempotencyKey) -> ImageWritten | Response:
    """Upload an image (multipart: `file` and optional `name`, `prompt`, `negative_prompt`, `tags`, `public`).
    The file is decoded and checked (422 not an image, 413 too large), stored re-encoded without metadata,
    with a thumbnail. Unknown tag names become new tags. Decoding shares a memory budget with every other upload
    (infra/decode_pool.py): 429 when it has no room soon enough, or when the caller has too many uploads in
    progress.

    Or ask for images to be generated (JSON: `prompt` and the generation parameters of docs/tasks.md): the
    answer is 202 with the task, which makes the images when a runner has run it; 429 when the caller has too
    many unfinished tasks."""
    if _is_json(request):
        return await _generate(request, app, services.blobs, actor, key)
    settings = services.settings
    decoders = services.decoders
    async with decoders.upload_slot(actor.user_id):  # from before the body is read until it has been decoded
        upload = await read_upload(request, settings.upload_max_bytes)
        fields = upload.fields
        tags = clean_tag_names(fields.tags)  # every check before anything is stored
        # A blank `name` is no name: a browser form sends its empty text inputs. The file's name stands in.
        name = fields.name if fields.name is not None and fields.name.strip() else default_name(upload.filename)
        if not name:
            raise Invalid("The image needs a name: send a `name` field (the file's name gives none).",
                          field="body.name")
        name = clean_text(name, "name", MAX_NAME)
        prompt = clean_text(fields.prompt, "prompt", MAX_PROMPT)
        negative = clean_text(fields.negative_prompt, "negative_prompt", MAX_PROMPT)
        limits = (settings.upload_max_bytes, settings.upload_max_pixels)
        cost = await run_in_threadpool(decoding_cost, upload.data, *limits)
        prepared = await decoders.run(cost, prepare_image, upload.data, *limits)
    checked = prepared.checked
    new = NewImage(name=name, prompt=prompt, negative_prompt=negative, width=checked.width, height=checked.height,
                   blob_key=prepared.image_key, thumbnail_key=prepared.thumbnail_key,
                   content_type=checked.content_type, public=fields.public, descriptor=prepared.descriptor)
    try:
        image, seq = await store_with_blobs(services.pool, services.blobs, prepared,
                                            lambda: upload_image(app, actor, new, tags, idempotency_key=key))
        likes: int | None = 0  # a new image
    except DuplicateRequest as dup:
        image, seq = await run_in_threadpool(created_again, app, Image, "image", actor, dup, key)
        likes = None  # the first upload's image, liked since perhaps
    written(response, seq)
    response.headers["Location"] = f"/api/images/{image.number}"
    return await run_in_threadpool(image_out, app, personal, services.blobs, image, likes)


@router.patch("/api/images/{image_id}", response_model=ImageWritten)
def patch_image(image_id: ObjectId, body: ImagePatch, response: Response, app: Commands, personal: Personal,
                blobs: Blobs, actor: RequiredUser) -> ImageWritten:
    """Change the fields sent: name, tags (names; unknown ones are created), public. Owner or admin. The
    answer's `likes` is null: GET the image for its count."""
    image, seq = change_image(app, actor, image_id, body.name, body.tags, body.public)
    written(response, seq)
    return image_out(app, personal, blobs, image, None)


@router.delete("/api/images/{image_id}", status_code=204)
def remove_image(image_id: ObjectId, app: Commands, actor: RequiredUser) -> Response:
    """Delete an image (owner or admin): it leaves every list, collection and like; its files are removed once
    no other image uses the same bytes."""
    seq = delete_image(app, actor, image_id)
    out = Response(status_code=204)
    written(out, seq)
    return out
