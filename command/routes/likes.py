"""PUT / DELETE /api/images/{id}/like: idempotent, 204."""

from __future__ import annotations

from fastapi import APIRouter, Response

from command.likes import like_image, unlike_image
from command.routes.deps import Commands
from infra.auth import RequiredUser
from infra.http import ObjectId, written

router = APIRouter(tags=["images"])


@router.put("/api/images/{image_id}/like", status_code=204)
def put_like(image_id: ObjectId, app: Commands, actor: RequiredUser) -> Response:
    """Like an image you can see. Liking it again changes nothing."""
    out = Response(status_code=204)
    written(out, like_image(app, actor, image_id))
    return out


@router.delete("/api/images/{image_id}/like", status_code=204)
def delete_like(image_id: ObjectId, app: Commands, actor: RequiredUser) -> Response:
    """Take your like back. Without a like this changes nothing."""
    out = Response(status_code=204)
    written(out, unlike_image(app, actor, image_id))
    return out
