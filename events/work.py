"""The work queue: released tasks waiting for a runner, in a JetStream stream of its own.

WorkQueue retention (a message is gone once a runner acks it), file storage, so released tasks survive restarts.
Subjects `<prefix>-work.<capability>.<task id>`: a runner pulls with the filter `<prefix>-work.<capability>.>`
of each capability it serves. Not `<prefix>.work...`: the domain stream owns `<prefix>.>`, and two streams cannot
share subjects. The message is the task's recipe (JSON) with `Nats-Msg-Id: task-<id>`, so a scheduler that
publishes a release again after a restart adds no second message within the duplicate window.
"""

from __future__ import annotations

import json
import re
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

DUPLICATE_WINDOW_S = 15 * 60.0
_STREAM_NAME_IN_USE = 10058
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def work_stream_name(stream: str) -> str:
    return f"{stream}_WORK"


def work_prefix(prefix: str) -> str:
    return f"{prefix}-work"


def work_subject(prefix: str, capability: str, task_id: int) -> str:
    if not _TOKEN.fullmatch(capability):
        raise ValueError(f"capability {capability!r} is not a subject token")
    return f"{work_prefix(prefix)}.{capability}.{task_id}"


def work_stream_config(stream: str, prefix: str, replicas: int = 1) -> StreamConfig:
    return StreamConfig(name=work_stream_name(stream), subjects=[f"{work_prefix(prefix)}.>"],
                        retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE,
                        duplicate_window=DUPLICATE_WINDOW_S, num_replicas=replicas)


async def ensure_work_stream(js: JetStreamContext, stream: str, prefix: str, replicas: int = 1) -> None:
    """`replicas`: `Settings.stream_replicas`, as for the domain stream."""
    config = work_stream_config(stream, prefix, replicas)
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise
        await js.update_stream(config)


async def open_work_stream(js: JetStreamContext, stream: str, prefix: str) -> None:
    """For a runner: the stream as the scheduler made it (never changed: a runner does not know the replicas,
    and its restricted NATS user may not change streams, docs/runners.md); created only where it is missing."""
    try:
        await js.stream_info(work_stream_name(stream))
    except NotFoundError:
        await ensure_work_stream(js, stream, prefix)


def work_item(task_id: int, capability: str, user_id: int, data: dict[str, Any]) -> bytes:
    """What a runner receives: the task and its whole recipe (the source image's blob key included)."""
    return json.dumps({"task_id": task_id, "capability": capability, "user_id": user_id, "data": data},
                      separators=(",", ":")).encode()


def read_work_item(raw: bytes) -> dict[str, Any]:
    item: dict[str, Any] = json.loads(raw)
    return item

