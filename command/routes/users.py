"""POST /api/users (sign-up), PATCH and DELETE /api/users/{id}, PATCH /api/account."""

from __future__ import annotations

from fastapi import APIRouter, Response

from command.accounts import UserChanges, UserView, change_user, delete_user, register_user, view
from command.routes.account_deps import ClientAddress, Personal, Throttle
from command.routes.deps import Commands, IdempotencyKey
from command.routes.idempotent import check_same_request
from command.users import User
from events.ids import split_uuid
from events.store.protocol import DuplicateRequest
from infra.account_schemas import AccountPatch, UserIn, UserOut, UserPatch
from infra.auth import CurrentActor, RequiredUser
from infra.http import ObjectId, written

router = APIRouter(tags=["users"])


def user_out(user: UserView) -> UserOut:
    """The answer to a command: the caller is the user themself or an admin, so the email is shown."""
    return UserOut(id=user.id, name=user.name or "[erased]", email=user.email, role=user.role,
                   created_at=user.user.created_on, updated_at=user.user.modified_on)


@router.post("/api/users", status_code=201, response_model=UserOut)
def post_user(body: UserIn, response: Response, app: Commands, personal: Personal, actor: CurrentActor,
              key: IdempotencyKey) -> UserOut:
    """Sign up (anyone, while AIDRAW_SIGNUP_OPEN; otherwise admins only). Names and emails are unique ignoring
    case (409). The new account is a `user`; log in with POST /api/sessions."""
    try:
        user, seq = register_user(app, personal, actor, body.name, body.email, body.password,
                                  idempotency_key=key)
    except DuplicateRequest as dup:
        check_same_request(dup, key)  # the same sign-up, password and all: only its sender can repeat it
        split = split_uuid(dup.events[0][0])
        assert split is not None
        user, seq = view(personal, app.load(User, "user", split[1])), dup.sequence
    written(response, seq)
    response.headers["Location"] = f"/api/users/{user.id}"
    return user_out(user)


def _changes(body: AccountPatch) -> UserChanges:
    return UserChanges(name=body.name, email=body.email, password=body.password,
                       old_password=body.old_password, role=getattr(body, "role", None))


@router.patch("/api/users/{user_id}", response_model=UserOut)
def patch_user(user_id: ObjectId, body: UserPatch, response: Response, app: Commands, personal: Personal,
               actor: RequiredUser, throttle: Throttle, address: ClientAddress) -> UserOut:
    """Change name, email, password (your own email or password needs `old_password`; a new password ends
    your other sessions) or role (admins, not their own). The user themself or an admin."""
    user, seq = change_user(app, personal, actor, user_id, _changes(body), throttle, address)
    written(response, seq)
    return user_out(user)


@router.delete("/api/users/{user_id}", status_code=204)
def remove_user(user_id: ObjectId, app: Commands, personal: Personal, actor: RequiredUser) -> Response:
    """Delete an account (the user themself or an admin): its sessions end at once, its name and email
    become free, and its personal data is erased from the log's readable history."""
    seq = delete_user(app, personal, actor, user_id)
    out = Response(status_code=204)
    written(out, seq)
    return out


@router.patch("/api/account", response_model=UserOut)
def patch_account(body: AccountPatch, response: Response, app: Commands, personal: Personal, actor: RequiredUser,
                  throttle: Throttle, address: ClientAddress) -> UserOut:
    """Change your own name, email or password (email and password with `old_password`; a new password
    ends your other sessions)."""
    assert actor.user_id is not None
    user, seq = change_user(app, personal, actor, actor.user_id, _changes(body), throttle, address)
    written(response, seq)
    return user_out(user)
