"""FastAPI dependencies of the account routes: personal data (the key store), the login throttle, the
client's address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from command.personal import PersonalData
from infra import proxies
from infra.ratelimit import LoginThrottle


def get_personal(request: Request) -> PersonalData:
    return PersonalData(request.app.state.keys, request.app.state.settings.subject_prefix)


def get_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def client_address(request: Request) -> str:
    """The client's address: the peer's, or behind a trusted proxy (AIDRAW_TRUSTED_PROXIES) the one its
    X-Forwarded-For names (infra/proxies.py)."""
    return proxies.client_address(request.client.host if request.client else None,
                                  request.headers.getlist("x-forwarded-for"),
                                  request.app.state.settings.trusted_proxies)


Personal = Annotated[PersonalData, Depends(get_personal)]
Throttle = Annotated[LoginThrottle, Depends(get_throttle)]
ClientAddress = Annotated[str, Depends(client_address)]
