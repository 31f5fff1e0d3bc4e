"""FastAPI dependencies of the command routes, and the part of the app's services they use
(`CommandServices`, a Protocol the composition root's container satisfies: infra/services.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Protocol

from fastapi import Depends, Header, Request
from psycopg_pool import AsyncConnectionPool
from starlette.concurrency import run_in_threadpool

from command.app import CommandApp
from events.store.protocol import RequestKey
from infra.actor import Actor
from infra.auth import current_actor
from infra.decode_pool import DecodePool
from infra.errors import Invalid
from infra.keys import PostgresKeyStore
from infra.presence import RunnerPresence
from infra.ratelimit import LoginThrottle
from infra.services import SharedServices, container
from infra.storage import BlobStore


class CommandServices(SharedServices, Protocol):
    @property
    def commands(self) -> CommandApp: ...

    @property
    def keys(self) -> PostgresKeyStore: ...  # per-user keys (personal data) and server secrets

    @property
    def login_throttle(self) -> LoginThrottle: ...

    @property
    def pool(self) -> AsyncConnectionPool: ...  # uploads' blob locks and the reap queue (infra/blob_locks.py)

    @property
    def decoders(self) -> DecodePool: ...  # image decoding within a memory budget (infra/decode_pool.py)

    @property
    def presence(self) -> RunnerPresence: ...  # the runners alive now (infra/presence.py)


def command_services(request: Request) -> CommandServices:
    services: CommandServices = container(request)
    return services


CommandSide = Annotated[CommandServices, Depends(command_services)]


def get_app(services: CommandSide) -> CommandApp:
    return services.commands


def get_blobs(services: CommandSide) -> BlobStore:
    return services.blobs


async def idempotency_key(request: Request, services: CommandSide, actor: Annotated[Actor, Depends(current_actor)],
                          key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> RequestKey | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise Invalid("Idempotency-Key must be 1..200 printable characters.", field="header.Idempotency-Key")
    return RequestKey(scoped_key(actor, key), await request_digest(request, services.keys))



def scoped_key(actor: Actor, key: str) -> str:
    """A key as the log records it: one caller's key is never another's (Stripe scopes keys to the account), so
    someone reusing another user's key makes a new object and learns nothing about the first request. Anonymous
    callers (sign-up) share one scope: there is no one to scope them to."""
    return f"user:{actor.user_id}:{key}" if actor.user_id is not None else f"anonymous:{key}"


SECRET_FIELDS = frozenset({"password", "old_password"})


async def request_digest(request: Request, keys: PostgresKeyStore) -> str | None:
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
    secret: bytes = await run_in_threadpool(keys.server_secret, "idempotency")
    message = b"%s %s\n%s" % (request.method.encode(), request.url.path.encode(), canonical)
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


Commands = Annotated[CommandApp, Depends(get_app)]
Blobs = Annotated[BlobStore, Depends(get_blobs)]
IdempotencyKey = Annotated[RequestKey | None, Depends(idempotency_key)]
