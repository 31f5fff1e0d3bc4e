"""Looking behind the API in image tests: what the blob store and the event log hold, and waiting for
background work (views, the blob reaper) that no answer waits for."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from aidraw.roles import PROJECTORS
from events.store.bridge import NatsBridge
from events.store.stream import stream_last_sequence
from projectors.checkpoints import wait_until_projected_sync
from tests.system import System


def blob_files(system: System) -> set[Path]:
    root = system.data_dir / "blobs"
    return {p for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts}


def log_end(system: System) -> int:
    """The domain stream's last sequence: unchanged means nothing was appended."""
    bridge = NatsBridge(system.nats_url)
    try:
        return stream_last_sequence(bridge, system.stream)
    finally:
        bridge.close()


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def wait_projected(system: System, sequence: str | int) -> None:
    """Until every projection reached `sequence` (someone's write), so that anyone's next read sees it: a
    caller's own reads wait for its own writes, other callers' reads do not."""
    wanted = int(sequence)
    assert wait_until_projected_sync(system.database_url, [p.name for p in PROJECTORS], wanted, 30), \
        f"projections did not reach {wanted}"
