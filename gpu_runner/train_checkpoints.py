"""Training checkpoints in the blob store, found again by whichever runner gets the task next.

The library (gpu_runner/training/core.py) saves and loads checkpoints by its own key (a hash of spec and dataset)
through a `CheckpointStore`. The blob store is content-addressed, so the key -> blob key map is kept beside it in
a NATS KV bucket (`<stream>_training`, file storage, one entry per task: `task-<id>` holding the checkpoint key
and the blob key). A runner killed mid-training leaves that entry behind; the redelivered work item's runner loads
the blob and resumes from its step. A new checkpoint replaces the task's previous blob; when the task is over
(trained, failed for good, canceled) `discard` removes both. Checkpoints are `application/octet-stream` blobs: the
blob reaper looks at image blobs only.

`load` and `save` are called from the training thread: their KV calls go to the runner's loop and are waited
for there; `discard` runs on the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from infra.storage import BlobNotFound, BlobStore

log = logging.getLogger("aidraw.runner")
CONTENT_TYPE = "application/octet-stream"
T = TypeVar("T")


async def open_index(js: JetStreamContext, stream: str) -> KeyValue:
    return await js.create_key_value(KeyValueConfig(bucket=f"{stream}_training", history=1,
                                                    storage=StorageType.FILE))


class BlobCheckpoints:
    """A CheckpointStore for one task (used from a thread other than `loop`'s)."""

    def __init__(self, blobs: BlobStore, index: KeyValue, loop: asyncio.AbstractEventLoop, task_id: int,
                 timeout_s: float = 30.0) -> None:
        self.blobs, self.index, self.loop = blobs, index, loop
        self.entry = f"task-{task_id}"
        self.timeout_s = timeout_s
        self.loaded_from: str | None = None  # the blob key a resume read (logs, tests)

    def _wait(self, work: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(self.timeout_s)  # type: ignore[arg-type]

    async def _read(self) -> dict[str, Any] | None:
        try:
            raw = (await self.index.get(self.entry)).value
        except KeyNotFoundError:
            return None
        return json.loads(raw) if raw else None

    def _current(self) -> dict[str, Any] | None:
        return self._wait(self._read())

    def load(self, key: str) -> bytes | None:
        current = self._current()
        if current is None or current.get("checkpoint") != key:
            return None  # none yet, or one of another spec or dataset (the task's recipe cannot change, but...)
        try:
            data = self.blobs.get(current["blob"])
        except BlobNotFound:
            log.warning("%s: its checkpoint blob %s is gone; training starts again", self.entry, current["blob"])
            return None
        self.loaded_from = current["blob"]
        log.info("%s: resuming from checkpoint %s", self.entry, current["blob"])
        return data

    def save(self, key: str, data: bytes) -> None:
        previous = self._current()
        blob = self.blobs.put(data, CONTENT_TYPE)
        self._wait(self.index.put(self.entry, json.dumps({"checkpoint": key, "blob": blob}).encode()))
        if previous is not None and previous.get("blob") != blob:
            self.blobs.delete(previous["blob"])

    async def discard(self) -> None:
        """On the loop, when the task is over: its checkpoint is no use any more."""
        current = await self._read()
        if current is not None:
            await asyncio.to_thread(self.blobs.delete, current["blob"])
            await self.index.delete(self.entry)
