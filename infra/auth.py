"""Who is calling, from the request's token. Until accounts exist every caller is anonymous (writes open)."""

from __future__ import annotations

from fastapi import Request

from infra.actor import ANONYMOUS, Actor


async def current_actor(request: Request) -> Actor:
    return ANONYMOUS
