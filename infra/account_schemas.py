"""The shapes of users, sessions and the account (API.md). Input models forbid unknown and read-only fields
(`id`, `user_id`, `created_at`, and `role` on self-service): 422."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from infra.passwords import MAX_PASSWORD, MIN_PASSWORD
from infra.schemas import Input, NoNulls, Page


class UserIn(Input):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)


class AccountPatch(NoNulls):
    """Change one's own account; a new password needs the old one. Null is refused (422), as in every PATCH."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, min_length=3, max_length=320)
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)
    old_password: str | None = Field(default=None, min_length=1, max_length=MAX_PASSWORD)


class UserPatch(AccountPatch):
    """As AccountPatch; `role` only by an admin, never on oneself."""

    role: Literal["user", "admin"] | None = None


class UserOut(BaseModel):
    id: int
    name: str
    email: str | None = Field(description="Shown to the user themself and to admins only; null otherwise.")
    role: str
    created_at: datetime
    updated_at: datetime


class UserPage(Page):
    list: list[UserOut]  # type: ignore[assignment]


class LoginIn(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class SessionOut(BaseModel):
    id: int
    user_id: int
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    user_agent: str | None


class SessionPage(Page):
    list: list[SessionOut]  # type: ignore[assignment]


class SessionCreated(BaseModel):
    id: int
    token: str = Field(description="Shown once: send it as `Authorization: Bearer <token>`.")
    expires_at: datetime
    user: UserOut


class Usage(BaseModel):
    used: int
    limit: int | None = Field(description="null: no limit is configured.")


class AccountOut(UserOut):
    counts: dict[Literal["images", "models", "tasks"], int]
    quota: dict[Literal["images", "models", "tasks"], Usage]
    unfinished_tasks: int = Field(description="Waiting or running: what the per-user cap counts.")
    gpu_seconds: float = Field(description="Runner time your tasks used, started to finished (deleted ones too).")
