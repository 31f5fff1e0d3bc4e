"""POST/PATCH/DELETE /api/models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from eventsourcing.application import AggregateNotFoundError
from fastapi import APIRouter, Depends, Response

from command.app import CommandApp
from command.model_upload import UPLOAD_BODY
from command.models import Model, change_model, create_model, delete_model
from command.routes.deps import Blobs, Commands, IdempotencyKey
from command.routes.idempotent import created_again
from command.tag_refs import tag_names
from command.training import cancel_training
from events.ids import aggregate_uuid
from events.store.protocol import DuplicateRequest
from infra.actor import Actor
from infra.auth import RequiredUser
from infra.authz import can_see
from infra.http import ObjectId, written
from infra.model_files import file_url
from infra.schemas_catalog import Items, ModelIn, ModelOut, ModelPatch

router = APIRouter(tags=["models"])


def blob_urls(store: Blobs) -> Callable[[str], str]:
    return store.url


BlobUrls = Annotated[Callable[[str], str], Depends(blob_urls)]


def cover_url(app: CommandApp, actor: Actor, image_id: int | None, url_of: Callable[[str], str]) -> str | None:
    """The cover's URL as the caller may see it: none when the image is gone or hidden from the caller (the
    query side joins the images read model the same way)."""
    if image_id is None:
        return None
    try:
        image: Any = app.repository.get(aggregate_uuid("image", image_id))
    except AggregateNotFoundError:
        return None
    if image.deleted or not can_see(actor, image.user_id, image.public):
        return None
    return url_of(image.blob_key)


def model_out(app: CommandApp, actor: Actor, model: Model, url_of: Callable[[str], str]) -> ModelOut:
    return ModelOut(
        id=model.number, name=model.name, type=model.type, base_model=model.base_model,
        trigger_words=model.trigger_words, model_path=file_url(model.number, model.model_path), status=model.status,
        progress=model.progress, image=cover_url(app, actor, model.image_id, url_of), image_id=model.image_id,
        tags=tag_names(app, model.tag_ids), public=model.public, user_id=model.user_id, source=model.source,
        dataset=Items(**model.data), training=model.training, task_id=model.training_task,
        error=model.error if model.status == "error" else None, created_at=model.created_on,
        updated_at=model.modified_on,
    )


@router.post("/api/models", status_code=201, response_model=ModelOut, openapi_extra=UPLOAD_BODY)
def post_model(body: ModelIn, response: Response, app: Commands, actor: RequiredUser, key: IdempotencyKey,
               url_of: BlobUrls) -> ModelOut:
    """Create a model in status `initial` with its training data (`data`: URLs, image ids, featured
    collection ids; at least one) and, optionally, training parameters (`training`, 422 outside their bounds).
    Tags are names, created on first use.

    Or upload one (multipart: a `.safetensors` file with `type` and `base_model`; command/routes/model_files.py
    serves it): checked, stored, and `success` at once (422 not a usable file for that type and base, 413 too
    large)."""
    try:
        model, seq = create_model(app, actor, name=body.name, type=body.type, base_model=body.base_model,
                                  source=body.source, trigger_words=body.trigger_words, tags=body.tags,
                                  public=body.public, data=body.data.model_dump(), training=body.training,
                                  idempotency_key=key)
    except DuplicateRequest as dup:
        model, seq = created_again(app, Model, "model", actor, dup, key)
    written(response, seq)
    response.headers["Location"] = f"/api/models/{model.number}"
    return model_out(app, actor, model, url_of)


@router.patch("/api/models/{model_id}", response_model=ModelOut)
def patch_model(model_id: ObjectId, body: ModelPatch, response: Response, app: Commands, actor: RequiredUser,
                url_of: BlobUrls) -> ModelOut:
    """Change the fields sent: name, trigger_words, tags, public, image (cover image id; null removes it),
    training (parameters). `status: "ready"` (from initial, error or success) asks for training, after the other
    changes; `{"status": "canceled"}` (alone) cancels it: the model goes back to its status before the request.
    Owner or admin; anything but a cancel is 409 while the model is ready, waiting or running."""
    sent = body.sent()
    if sent.get("status") == "canceled" and len(sent) == 1:
        model, seq = cancel_training(app, actor, model_id)
    else:
        model, seq = change_model(app, actor, model_id, sent)
    written(response, seq)
    return model_out(app, actor, model, url_of)


@router.delete("/api/models/{model_id}", status_code=204)
def remove_model(model_id: ObjectId, app: Commands, actor: RequiredUser) -> Response:
    """Delete a model (owner or admin; 409 while it is training)."""
    out = Response(status_code=204)
    written(out, delete_model(app, actor, model_id))
    return out
