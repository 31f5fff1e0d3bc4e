"""FastAPI dependencies of the account routes: personal data (the key store), the login throttle, the
client's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from command.personal import PersonalData
from infra.ratelimit import LoginThrottle


def get_personal(request: Request) -> PersonalData:
    return PersonalData(request.app.state.keys, request.app.state.settings.subject_prefix)


def get_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def client_address(request: Request) -> str:
    """The peer's address. Behind a proxy this is the proxy's: per-address limits then count all its clients
    together (no forwarded header is trusted)."""
    return request.client.host if request.client else "unknown"


Personal = Annotated[PersonalData, Depends(get_personal)]
Throttle = Annotated[LoginThrottle, Depends(get_throttle)]
ClientAddress = Annotated[str, Depends(client_address)]
