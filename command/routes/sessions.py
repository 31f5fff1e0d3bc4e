"""POST /api/sessions (log in) and DELETE /api/sessions/{id} (log out); `/api/sesions` is the original
spec's spelling, kept as an alias."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from command.routes.account_deps import ClientAddress, Personal, Throttle
from command.routes.deps import Commands
from command.routes.users import user_out
from command.sessions import log_in, log_out
from infra.account_schemas import LoginIn, SessionCreated
from infra.auth import RequiredUser
from infra.http import ObjectId, written

router = APIRouter(tags=["sessions"])


@router.post("/api/sessions", status_code=201, response_model=SessionCreated)
@router.post("/api/sesions", status_code=201, response_model=SessionCreated, include_in_schema=False)
def post_session(body: LoginIn, request: Request, response: Response, app: Commands, personal: Personal,
                 throttle: Throttle, address: ClientAddress) -> SessionCreated:
    """Log in with `name` or `email` and `password`. The token is in this answer only: send it as
    `Authorization: Bearer <token>`. Wrong name, email or password: 401; too many failures: 429."""
    session, token, user, seq = log_in(app, personal, throttle, name=body.name, email=body.email,
                                       password=body.password, address=address,
                                       user_agent=request.headers.get("user-agent", ""))
    written(response, seq)
    request.state.issued_token = token  # so the new token's first reads wait for this write
    response.headers["Location"] = f"/api/sessions/{session.number}"
    response.headers["Cache-Control"] = "no-store"
    return SessionCreated(id=session.number, token=token, expires_at=session.expires_at, user=user_out(user))


@router.delete("/api/sessions/{session_id}", status_code=204)
@router.delete("/api/sesions/{session_id}", status_code=204, include_in_schema=False)
def remove_session(session_id: ObjectId, app: Commands, actor: RequiredUser) -> Response:
    """Log out: end your session (an admin: any). The token is refused from the very next request."""
    seq = log_out(app, actor, session_id)
    out = Response(status_code=204)
    written(out, seq)
    return out
