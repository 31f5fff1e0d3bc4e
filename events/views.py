"""Image views: browsing history for `sort=history`. High-volume and not domain facts, so they do NOT go in the
domain stream: they go to a stream of their own, `<domain stream>_VIEWS` on subjects `<prefix>_views.image.<id>`,
whose messages expire after a max age (old history is worth little, and the stream must not grow forever).

A view is a small JSON message, `{"user_id", "image_id", "viewed_at"}`, published by the API (`ViewRecorder`,
on the API's own async NATS client) after a successful, logged-in GET of an image. Losing one (the API stopped
before publishing it, NATS was away) loses a line of history, nothing else: no request waits for it and no rule
depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

log = logging.getLogger("aidraw.views")

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


class ViewRecorder:
    """Records views from the API's event loop through the API's own async NATS client (aidraw/bootstrap.py),
    best-effort: `record` never waits. It puts the view on a bounded queue (a full queue drops it) and a task
    publishes what is queued, each publish bounded by `timeout_s`. A NATS outage loses views, never fails or
    slows a GET; the first failure after a success is logged, and the first success after failures."""

    def __init__(self, js: JetStreamContext, stream: str, prefix: str, max_age_s: float, *,
                 queue_size: int = 10_000, timeout_s: float = 2.0, concurrency: int = 64) -> None:
        self._js = js
        self._stream = stream
        self._prefix = prefix
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._concurrency = concurrency
        self._queue: asyncio.Queue[ImageViewed] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._stream_ready = False
        self._failing = False
        self.dropped = 0  # views lost: queue full, or NATS did not take them in time

    def start(self) -> None:
        """Start publishing (on the running loop: the app's)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="aidraw-views")

    def record(self, user_id: int, image_id: int) -> None:
        try:
            self._queue.put_nowait(ImageViewed(user_id, image_id, datetime.now(UTC)))
        except asyncio.QueueFull:
            self.dropped += 1

    async def close(self, drain_s: float = 2.0) -> None:
        """Publish what is queued for at most `drain_s`, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_s):
                await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._concurrency and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._publish_all(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _publish_all(self, batch: list[ImageViewed]) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                if not self._stream_ready:
                    await ensure_views_stream(self._js, self._stream, self._prefix, self._max_age_s)
                    self._stream_ready = True
                results = await asyncio.gather(*(self._publish(view) for view in batch), return_exceptions=True)
        except Exception as exc:
            results = [exc] * len(batch)
        failures = [r for r in results if isinstance(r, BaseException)]
        self.dropped += len(failures)
        if failures and not self._failing:
            log.warning("views not recorded: the event log did not take them",
                        extra={"lost": len(failures), "error": str(failures[0]) or type(failures[0]).__name__})
        elif not failures and self._failing:
            log.info("views recorded again", extra={"lost_so_far": self.dropped})
        self._failing = bool(failures)

    async def _publish(self, view: ImageViewed) -> None:
        subject, body = encode_view(self._prefix, view)
        await self._js.publish(subject, body, stream=self._stream, timeout=self._timeout_s)
