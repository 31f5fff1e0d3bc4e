"""How a route reaches the app's services without knowing the app that holds them.

The composition root (aidraw/bootstrap.py) builds one typed container, `Services`, when the app starts and
hands it to every request through the app's lifespan state. Each side names the part of it that it uses as a
Protocol beside its own dependencies: `SharedServices` here (what infra's dependencies use: the auth check),
`CommandServices` in command/routes/deps.py, `QueryServices` in query/services.py. Routes take typed
`Annotated[..., Depends(...)]` parameters built on them; no route reads `app.state`, and the container is
checked against every Protocol where it is built (by mypy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from events.store.protocol import EventStore
from infra.settings import Settings
from infra.storage import BlobStore

SERVICES_KEY = "services"  # the container's key in the lifespan state


class SharedServices(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def event_log(self) -> EventStore: ...  # the domain stream: sessions are folded from it on each request

    @property
    def blobs(self) -> BlobStore: ...

    @property
    def extend_session(self) -> Callable[[int], None]: ...


def container(request: Request) -> Any:
    """The container of this request's app (each side's accessor gives it its own Protocol's type)."""
    return getattr(request.state, SERVICES_KEY)


def shared_services(request: Request) -> SharedServices:
    services: SharedServices = container(request)
    return services


Shared = Annotated[SharedServices, Depends(shared_services)]
