"""Image views: browsing history for `sort=history`. High-volume and not domain facts, so they do NOT go in the
domain stream: they go to a stream of their own, `<domain stream>_VIEWS` on subjects `<prefix>_views.image.<id>`,
whose messages expire after a max age (old history is worth little, and the stream must not grow forever).

A view is a small JSON message, `{"user_id", "image_id", "viewed_at"}`, published by the API after a
successful, logged-in GET of an image. Losing one (the API stopped before publishing it) loses a line of
history, nothing else: no write waits for it and no rule depends on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from events.store.bridge import NatsBridge

T = TypeVar("T")

_STREAM_NAME_IN_USE = 10058


def views_stream_name(domain_stream: str) -> str:
    return f"{domain_stream}_VIEWS"


def views_prefix(domain_prefix: str) -> str:
    # `<prefix>_views.>` does not overlap the domain stream's `<prefix>.>`.
    return f"{domain_prefix}_views"


@dataclass(frozen=True)
class ImageViewed:
    user_id: int
    image_id: int
    viewed_at: datetime


def views_stream_config(name: str, prefix: str, max_age_s: float) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{prefix}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,  # expired history makes room; a view never waits for space
        max_age=max_age_s,
        duplicate_window=min(120.0, max_age_s),
    )


async def ensure_views_stream(js: JetStreamContext, name: str, prefix: str, max_age_s: float) -> None:
    """Create the views stream or bring its configuration up to date."""
    config = views_stream_config(name, prefix, max_age_s)
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise
        await js.update_stream(config)


def encode_view(prefix: str, view: ImageViewed) -> tuple[str, bytes]:
    body = {"user_id": view.user_id, "image_id": view.image_id, "viewed_at": view.viewed_at.isoformat()}
    return f"{prefix}.image.{view.image_id}", json.dumps(body).encode()


def decode_view(headers: dict[str, str] | None, data: bytes) -> ImageViewed | None:
    """The view a message carries; None for anything else (a stray message must not stop the projector)."""
    try:
        body = json.loads(data)
        view = ImageViewed(int(body["user_id"]), int(body["image_id"]), datetime.fromisoformat(body["viewed_at"]))
    except (ValueError, KeyError, TypeError):
        return None
    return view if view.viewed_at.tzinfo is not None else None


class ViewPublisher:
    """Publishes views from async code (the API's event loop) through the process's NATS bridge, whose
    connection lives on another loop: the coroutine runs there and is awaited here without blocking."""

    def __init__(self, bridge: NatsBridge, stream: str, prefix: str, max_age_s: float) -> None:
        self._bridge = bridge
        self._stream = stream
        self._prefix = prefix
        self._max_age_s = max_age_s
        self._ready = False

    async def _on_bridge(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._bridge.loop))

    async def publish(self, user_id: int, image_id: int) -> None:
        if not self._ready:
            await self._on_bridge(ensure_views_stream(self._bridge.js, self._stream, self._prefix, self._max_age_s))
            self._ready = True
        subject, body = encode_view(self._prefix, ImageViewed(user_id, image_id, datetime.now(UTC)))
        await self._on_bridge(self._bridge.js.publish(subject, body, stream=self._stream, timeout=5))
