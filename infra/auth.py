"""Who is calling, from the request's token.

`current_actor` resolves `Authorization: Bearer <token>` (or the original frontend's `token: <token>` header) to
an `Actor`; `require_user` additionally refuses anonymous callers with 401. Until accounts exist every caller is
anonymous (writes open) - the accounts work replaces the resolution, not these signatures.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from infra.actor import ANONYMOUS, Actor
from infra.errors import Unauthorized


async def current_actor(request: Request) -> Actor:
    return ANONYMOUS


async def require_user(actor: Annotated[Actor, Depends(current_actor)]) -> Actor:
    if actor.is_anonymous:
        raise Unauthorized()
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]
RequiredUser = Annotated[Actor, Depends(require_user)]
