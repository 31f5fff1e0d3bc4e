"""Runner heartbeats: who is online now, in a NATS key-value bucket whose entries expire, never in the domain log.

A heartbeat is short-lived state (DESIGN.md): whether a runner is alive, idle or busy changes every few seconds
and means nothing tomorrow, so it is not a fact for the log. Each runner puts its own entry, key = its server id,
every `interval` (a third of the TTL) and at once when its state changes. The bucket `<stream>_runners` keeps the
last entry per key only and the server drops an entry `AIDRAW_RUNNER_TTL` seconds after it was put: a runner
that was SIGKILLed, lost its network or froze simply stops putting, and its entry is gone within the TTL without
anyone cleaning up, and without comparing clocks of different machines. Expiry leaves a marker that watchers see
(`limit_marker_ttl`), so the API's mirror (infra/presence.py) learns of it at once.

The trusted side (API, process manager) creates or updates the bucket with the configured TTL and replicas
(`ensure_heartbeats`); a runner only binds to it (`open_heartbeats`), and creates it only when it is missing
and its NATS user may (the embedded setup): a runner's restricted user (docs/runners.md) may not.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Literal

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, BucketNotFoundError
from nats.js.kv import KeyValue

_STREAM_NAME_IN_USE = 10058
HeartbeatStatus = Literal["online", "busy", "draining"]


def heartbeat_bucket(stream: str) -> str:
    return f"{stream}_runners"


def heartbeat_interval(ttl_s: float) -> float:
    """How often a runner puts its entry: three chances before the entry expires."""
    return ttl_s / 3


@dataclass(frozen=True)
class Heartbeat:
    """One runner's entry: its state, the tasks of the batch at hand, what it serves (so that who serves what now
    needs nothing but the bucket), and `at`, the runner's clock (epoch seconds) when it put the entry."""

    server_id: int
    status: HeartbeatStatus
    task_ids: list[int] = field(default_factory=list)
    at: float = 0.0
    capabilities: list[str] = field(default_factory=list)

    def encode(self) -> bytes:
        return json.dumps({"server_id": self.server_id, "status": self.status, "task_ids": self.task_ids,
                           "at": self.at or time.time(), "capabilities": self.capabilities},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> Heartbeat | None:
        """The entry, or None for anything that is not one (a foreign writer's junk must not break a reader)."""
        try:
            body = json.loads(data)
            status = body["status"]
            if status not in ("online", "busy", "draining"):
                return None
            return cls(int(body["server_id"]), status, [int(t) for t in body.get("task_ids", [])],
                       float(body["at"]), [str(c) for c in body.get("capabilities", [])])
        except (ValueError, KeyError, TypeError):
            return None


def _config(stream: str, ttl_s: float, replicas: int) -> KeyValueConfig:
    # File storage: the bucket (not its entries) must outlive a NATS restart, or every runner's next put fails.
    return KeyValueConfig(bucket=heartbeat_bucket(stream), ttl=ttl_s, history=1, storage=StorageType.FILE,
                          replicas=replicas, limit_marker_ttl=ttl_s)


async def ensure_heartbeats(js: JetStreamContext, stream: str, ttl_s: float, replicas: int = 1) -> KeyValue:
    """Create the bucket, or bring an existing one to this TTL and replica count."""
    config = _config(stream, ttl_s, replicas)
    try:
        return await js.create_key_value(config)
    except BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise
    info = await js.stream_info(f"KV_{config.bucket}")
    wanted = info.config.evolve(max_age=ttl_s, num_replicas=replicas, subject_delete_marker_ttl=ttl_s,
                                duplicate_window=min(ttl_s, 120.0))
    await js.update_stream(wanted)
    return await js.key_value(config.bucket)


async def open_heartbeats(js: JetStreamContext, stream: str, ttl_s: float, replicas: int = 1) -> KeyValue:
    """The bucket as it is (a runner never changes its settings); created only where it is missing."""
    try:
        return await js.key_value(heartbeat_bucket(stream))
    except BucketNotFoundError:
        return await ensure_heartbeats(js, stream, ttl_s, replicas)
