"""POST /api/models as a multipart upload: bring your own `.safetensors` model (command/model_upload.py).

It shares its path and method with the JSON create (command/routes/models.py): this route matches only
multipart bodies (`MultipartOnly`) and is included first, so a JSON body goes on to the JSON route. Its request
body is documented on the JSON route's operation (command/model_upload.py `UPLOAD_BODY`), one operation per
path and method.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import Scope

from command.model_upload import CONTENT_TYPE, read_model_upload, upload_model
from command.models import Model
from command.routes.deps import Commands, CommandSide, IdempotencyKey
from command.routes.idempotent import created_again
from command.routes.models import model_out
from events.store.protocol import DuplicateRequest
from infra.auth import RequiredUser
from infra.errors import Unavailable
from infra.http import written
from infra.schemas_catalog import ModelOut
from infra.storage import BlobStoreError


def _multipart(scope: Scope) -> bool:
    return Headers(scope=scope).get("content-type", "").lower().startswith("multipart/form-data")


class MultipartOnly(APIRoute):
    """A route that matches only requests with a multipart body; others fall through to the next route."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and not _multipart(scope):
            return Match.NONE, {}
        return match, child


router = APIRouter(tags=["models"], route_class=MultipartOnly)


@router.post("/api/models", status_code=201, response_model=ModelOut, include_in_schema=False)
async def upload_model_file(request: Request, response: Response, app: Commands, services: CommandSide,
                            actor: RequiredUser, key: IdempotencyKey) -> ModelOut:
    """Upload a model (multipart: `file`, `type`, `base_model`, and optionally `name`, `source`,
    `trigger_words`, `tags`, `public`): checked (422 not a safetensors file of that type for that base, 413 too
    large, 429 when the caller has AIDRAW_UPLOADS_PER_USER uploads in progress), stored, and `success` at once."""
    async with services.decoders.upload_slot(actor.user_id):  # counted with the user's image uploads (429)
        upload = await read_model_upload(request, services.settings.model_upload_max_bytes)

        def store() -> str:
            try:
                return services.blobs.put_file(upload.path, CONTENT_TYPE)
            except (BlobStoreError, OSError) as exc:
                raise Unavailable("The model file could not be stored just now; try again.") from exc

        try:
            model, seq = await run_in_threadpool(upload_model, app, actor, upload.fields, store, upload.size, key)
        except DuplicateRequest as dup:
            model, seq = await run_in_threadpool(created_again, app, Model, "model", actor, dup, key)
        finally:
            await run_in_threadpool(upload.discard)
    written(response, seq)
    response.headers["Location"] = f"/api/models/{model.number}"
    return await run_in_threadpool(model_out, app, actor, model, services.blobs.url)
