"""POST/PATCH/DELETE /api/params."""

from __future__ import annotations

from fastapi import APIRouter, Response

from command.params import Param, change_param, create_param, delete_param
from command.routes.deps import Commands, IdempotencyKey
from command.routes.idempotent import created_again
from events.store.protocol import DuplicateRequest
from infra.auth import RequiredUser
from infra.http import ObjectId, written
from infra.schemas_catalog import ParamIn, ParamOut, ParamPatch

router = APIRouter(tags=["params"])


def param_out(param: Param) -> ParamOut:
    return ParamOut(id=param.number, name=param.name, data=param.data, public=param.public, user_id=param.user_id,
                    created_at=param.created_on, updated_at=param.modified_on)


@router.post("/api/params", status_code=201, response_model=ParamOut)
def post_param(body: ParamIn, response: Response, app: Commands, actor: RequiredUser,
               key: IdempotencyKey) -> ParamOut:
    """Save a parameter set (private unless `public: true`). `data` is any JSON object up to 64 KiB."""
    try:
        param, seq = create_param(app, actor, body.name, body.data, body.public, idempotency_key=key)
    except DuplicateRequest as dup:
        param, seq = created_again(app, Param, "param", actor, dup, key)
    written(response, seq)
    response.headers["Location"] = f"/api/params/{param.number}"
    return param_out(param)


@router.patch("/api/params/{param_id}", response_model=ParamOut)
def patch_param(param_id: ObjectId, body: ParamPatch, response: Response, app: Commands,
                actor: RequiredUser) -> ParamOut:
    """Change the fields sent (owner or admin)."""
    param, seq = change_param(app, actor, param_id, **body.sent())
    written(response, seq)
    return param_out(param)


@router.delete("/api/params/{param_id}", status_code=204)
def remove_param(param_id: ObjectId, app: Commands, actor: RequiredUser) -> Response:
    """Delete a parameter set (owner or admin)."""
    out = Response(status_code=204)
    written(out, delete_param(app, actor, param_id))
    return out
