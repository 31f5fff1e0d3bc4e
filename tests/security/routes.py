"""Every route the app serves, as (METHOD, path template) pairs: what the authorisation matrix must cover."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute, Route, WebSocketRoute

from aidraw.app import create_app
from infra.settings import Settings


def _flatten(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for route in routes:
        included: Any = getattr(route, "original_router", None)  # FastAPI >= 0.16x wraps included routers
        if included is not None:
            context = getattr(route, "include_context", None)
            found += _flatten(list(included.routes), prefix + getattr(context, "prefix", ""))
        elif isinstance(route, APIWebSocketRoute | WebSocketRoute):
            found.append(("WS", prefix + route.path))
        elif isinstance(route, APIRoute | Route):
            methods = set(route.methods or ())
            if "GET" in methods:
                methods.discard("HEAD")  # implied by GET
            found += [(method, prefix + route.path) for method in methods]
    return found


def app_routes() -> set[tuple[str, str]]:
    """The routes of the app as `aidraw api` builds it (nothing is connected: the lifespan does not run)."""
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="aidraw-routes-")))
    app = create_app(settings, "nats://127.0.0.1:1", "postgresql://nobody@127.0.0.1:1/none")
    return set(_flatten(list(app.router.routes)))
