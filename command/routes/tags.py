"""POST/PATCH/DELETE /api/tags."""

from __future__ import annotations

from fastapi import APIRouter, Response

from command.routes.deps import Commands, IdempotencyKey
from command.routes.idempotent import created_again
from command.tags import Tag, create_tag, delete_tag, rename_tag
from events.store.protocol import DuplicateRequest
from infra.auth import RequiredUser
from infra.http import ObjectId, written
from infra.schemas import TagIn, TagOut, TagPatch

router = APIRouter(tags=["tags"])


def tag_out(tag: Tag) -> TagOut:
    return TagOut(id=tag.number, name=tag.name, user_id=tag.user_id, created_at=tag.created_on,
                  updated_at=tag.modified_on)


@router.post("/api/tags", status_code=201, response_model=TagOut)
def post_tag(body: TagIn, response: Response, app: Commands, actor: RequiredUser, key: IdempotencyKey) -> TagOut:
    """Create a tag. Names are unique ignoring case (409 when taken)."""
    try:
        tag, seq = create_tag(app, actor, body.name, idempotency_key=key)
    except DuplicateRequest as dup:
        tag, seq = created_again(app, Tag, "tag", actor, dup, key)
    written(response, seq)
    response.headers["Location"] = f"/api/tags/{tag.number}"
    return tag_out(tag)


@router.patch("/api/tags/{tag_id}", response_model=TagOut)
def patch_tag(tag_id: ObjectId, body: TagPatch, response: Response, app: Commands, actor: RequiredUser) -> TagOut:
    """Rename a tag (creator or admin)."""
    tag, seq = rename_tag(app, actor, tag_id, body.name)
    written(response, seq)
    return tag_out(tag)


@router.delete("/api/tags/{tag_id}", status_code=204)
def remove_tag(tag_id: ObjectId, response: Response, app: Commands, actor: RequiredUser) -> Response:
    """Delete a tag (creator or admin). Its name becomes free."""
    seq = delete_tag(app, actor, tag_id)
    out = Response(status_code=204)
    written(out, seq)
    return out
