"""FastAPI dependencies of the account routes: personal data (the key store), the login throttle, the
client's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from command.personal import PersonalData
from command.routes.deps import CommandSide
from infra.ratelimit import LoginThrottle


def get_personal(services: CommandSide) -> PersonalData:
    return PersonalData(services.keys, services.settings.subject_prefix)


def get_throttle(services: CommandSide) -> LoginThrottle:
    return services.login_throttle


def client_address(request: Request) -> str:
    """The peer's address. Behind a proxy this is the proxy's: per-address limits then count all its clients
    together (no forwarded header is trusted)."""
    return request.client.host if request.client else "unknown"


Personal = Annotated[PersonalData, Depends(get_personal)]
Throttle = Annotated[LoginThrottle, Depends(get_throttle)]
ClientAddress = Annotated[str, Depends(client_address)]
