"""POST / PATCH / DELETE /api/choices (featured collections)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from command.app import CommandApp
from command.choices import Choice, change_choice, create_choice, delete_choice
from command.images import load_visible_image
from command.routes.deps import Commands, IdempotencyKey
from command.routes.idempotent import created_again
from events.store.protocol import DuplicateRequest
from infra.actor import Actor
from infra.auth import RequiredUser
from infra.errors import NotFound
from infra.http import ObjectId, written
from infra.schemas_images import ChoiceIn, ChoiceItemOut, ChoiceOut, ChoicePatch

router = APIRouter(tags=["choices"])


def choice_out(app: CommandApp, actor: Actor, choice: Choice) -> ChoiceOut:
    """The collection as the caller sees it: images deleted or hidden from the caller since they were added
    are left out, as the query side does."""
    items = []
    for item in choice.items:
        try:
            load_visible_image(app, actor, item["image_id"])
        except NotFound:
            continue
        items.append(ChoiceItemOut(image_id=item["image_id"], weight=item["weight"]))
    return ChoiceOut(id=choice.number, name=choice.name, public=choice.public, user_id=choice.user_id, items=items,
                     created_at=choice.created_on, updated_at=choice.modified_on)


@router.post("/api/choices", status_code=201, response_model=ChoiceOut)
def post_choice(body: ChoiceIn, response: Response, app: Commands, actor: RequiredUser,
                key: IdempotencyKey) -> ChoiceOut:
    """Create a featured collection: a name, a public flag (default true) and weighted images you can see
    (422 names an image that does not exist or that you cannot see)."""
    try:
        choice, seq = create_choice(app, actor, body.name, body.public,
                                    [item.model_dump() for item in body.items], idempotency_key=key)
    except DuplicateRequest as dup:
        choice, seq = created_again(app, Choice, "choice", actor, dup, key)
    written(response, seq)
    response.headers["Location"] = f"/api/choices/{choice.number}"
    return choice_out(app, actor, choice)


@router.patch("/api/choices/{choice_id}", response_model=ChoiceOut)
def patch_choice(choice_id: ObjectId, body: ChoicePatch, response: Response, app: Commands,
                 actor: RequiredUser) -> ChoiceOut:
    """Change the fields sent: name, public, items (the whole list). Owner or admin."""
    items = None if body.items is None else [item.model_dump() for item in body.items]
    choice, seq = change_choice(app, actor, choice_id, body.name, body.public, items)
    written(response, seq)
    return choice_out(app, actor, choice)


@router.delete("/api/choices/{choice_id}", status_code=204)
def remove_choice(choice_id: ObjectId, app: Commands, actor: RequiredUser) -> Response:
    """Delete a featured collection (owner or admin). Its images stay."""
    out = Response(status_code=204)
    written(out, delete_choice(app, actor, choice_id))
    return out
