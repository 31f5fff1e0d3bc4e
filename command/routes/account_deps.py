"""FastAPI dependencies of the account routes: personal data (the key store), the login throttle, the
client's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from command.personal import PersonalData
from command.routes.deps import CommandSide
from infra import proxies
from infra.ratelimit import LoginThrottle


def get_personal(services: CommandSide) -> PersonalData:
    return PersonalData(services.keys, services.settings.subject_prefix)


def get_throttle(services: CommandSide) -> LoginThrottle:
    return services.login_throttle


def client_address(request: Request, services: CommandSide) -> str:
    """The client's address: the peer's, or behind a trusted proxy (AIDRAW_TRUSTED_PROXIES) the one its
    X-Forwarded-For names (infra/proxies.py)."""
    return proxies.client_address(request.client.host if request.client else None,
                                  request.headers.getlist("x-forwarded-for"),
                                  services.settings.trusted_proxies)


Personal = Annotated[PersonalData, Depends(get_personal)]
Throttle = Annotated[LoginThrottle, Depends(get_throttle)]
ClientAddress = Annotated[str, Depends(client_address)]
