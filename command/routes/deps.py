"""FastAPI dependencies of the command routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from command.app import CommandApp
from infra.actor import Actor
from infra.auth import require_user
from infra.errors import Invalid


def get_app(request: Request) -> CommandApp:
    app: CommandApp = request.app.state.commands
    return app


def idempotency_key(key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise Invalid("Idempotency-Key must be 1..200 printable characters.", field="header.Idempotency-Key")
    return key


Commands = Annotated[CommandApp, Depends(get_app)]
Caller = Annotated[Actor, Depends(require_user)]  # every write needs a token
IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]
