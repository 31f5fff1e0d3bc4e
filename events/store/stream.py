"""The domain stream's configuration (DESIGN.md, "The event log: NATS JetStream").

- file storage and `discard: new`: a full stream refuses appends instead of silently dropping old events;
- `deny_delete`, `deny_purge`: the log is append-only, nobody erases history through the API;
- `allow_atomic`: multi-event commands and uniqueness claims are appended as one all-or-nothing batch;
- `allow_direct`: reads (aggregate loads, notification pages) use direct get, without a consumer;
- a duplicate window for `Nats-Msg-Id` (idempotency keys are also remembered forever on their own subjects).

nats-py 2.16's StreamConfig knows all these fields (`allow_atomic` included), so no raw API request is needed.
"""

from __future__ import annotations

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from events.store.bridge import NatsBridge

# JetStream's "stream name already in use with a different configuration".
_STREAM_NAME_IN_USE = 10058


def stream_config(name: str, prefix: str, duplicate_window_s: float = 120.0, replicas: int = 1) -> StreamConfig:
    """`replicas`: 1 on one server (embedded), 3 on the compose cluster (R3): `Settings.stream_replicas`."""
    return StreamConfig(
        name=name,
        subjects=[f"{prefix}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        deny_delete=True,
        deny_purge=True,
        allow_atomic=True,
        allow_direct=True,
        duplicate_window=duplicate_window_s,
        num_replicas=replicas,
    )


def ensure_stream(bridge: NatsBridge, name: str, prefix: str, duplicate_window_s: float = 120.0,
                  replicas: int = 1) -> None:
    """Create the stream, or bring an existing one's configuration up to date."""
    config = stream_config(name, prefix, duplicate_window_s, replicas)

    async def ensure() -> None:
        try:
            await bridge.js.add_stream(config)
        except BadRequestError as exc:
            if exc.err_code != _STREAM_NAME_IN_USE:
                raise
            await bridge.js.update_stream(config)

    bridge.run(ensure())


def stream_last_sequence(bridge: NatsBridge, name: str) -> int:
    """The stream's last sequence number, 0 for an empty stream."""

    async def last() -> int:
        info = await bridge.js.stream_info(name)
        return int(info.state.last_seq or 0)

    try:
        return bridge.run(last())
    except NotFoundError:
        raise LookupError(f"no stream named {name!r}") from None
