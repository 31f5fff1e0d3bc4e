"""Benchmarks: each prints figures beside a same-run baseline and asserts nothing."""

from __future__ import annotations

from events.store.bridge import NatsBridge


def close_nats(url: str) -> None:
    """Close this process's shared NATS connection to a bench's own server, before the server stops. Closing an
    eventsourcing application leaves the process-wide bridge open, and a connection whose server went away
    prints reconnect errors until the process ends."""
    NatsBridge.shared(url).close()
