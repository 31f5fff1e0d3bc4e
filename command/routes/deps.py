"""FastAPI dependencies of the command routes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from command.app import CommandApp
from events.store.protocol import RequestKey
from infra.actor import Actor
from infra.auth import current_actor
from infra.errors import Invalid


def get_app(request: Request) -> CommandApp:
    app: CommandApp = request.app.state.commands
    return app


async def idempotency_key(request: Request, actor: Annotated[Actor, Depends(current_actor)],
                          key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> RequestKey | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise Invalid("Idempotency-Key must be 1..200 printable characters.", field="header.Idempotency-Key")
    return RequestKey(scoped_key(actor, key), await request_digest(request))


def scoped_key(actor: Actor, key: str) -> str:
    """A key as the log records it: one caller's key is never another's (Stripe scopes keys to the account), so
    someone reusing another user's key makes a new object and learns nothing about the first request. Anonymous
    callers (sign-up) share one scope: there is no one to scope them to."""
    return f"user:{actor.user_id}:{key}" if actor.user_id is not None else f"anonymous:{key}"


SECRET_FIELDS = frozenset({"password", "old_password"})


async def request_digest(request: Request) -> str | None:
    """What a JSON request asks, as an HMAC under a server secret: the method, the path and the body in canonical
    form (keys sorted, no spaces), so a retry matches however its JSON is spelled. An HMAC, not a hash, because a
    body may hold an email: the log keeps nothing a reader could test guesses against. Passwords are left out
    altogether: with the server secret as well, an HMAC would test password guesses far faster than their
    argon2 hashes do. Multipart uploads get none (their boundaries differ on every retry): the key alone decides."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        return None
    raw = await request.body()
    try:
        body = json.loads(raw)
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in SECRET_FIELDS}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except ValueError:
        canonical = raw  # not JSON: the route answers 422 before any write
    secret: bytes = await run_in_threadpool(request.app.state.keys.server_secret, "idempotency")
    message = b"%s %s\n%s" % (request.method.encode(), request.url.path.encode(), canonical)
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


Commands = Annotated[CommandApp, Depends(get_app)]
IdempotencyKey = Annotated[RequestKey | None, Depends(idempotency_key)]
