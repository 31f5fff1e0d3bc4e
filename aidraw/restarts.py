"""How `aidraw run` keeps its parts running: restart a crashed part with backoff, give up on one that keeps crashing.

A part is a role (api, projector) or an embedded server (NATS, PostgreSQL): a child process that can be started
again. A crashed part is restarted after a pause that doubles with each crash still inside the window (0.5 s,
1 s, 2 s, ... at most 10 s); a part that crashes `max_crashes` times within `window_s` seconds stops the system,
as a process supervisor's start limit does (systemd's StartLimitBurst/StartLimitIntervalSec). A start that fails
(the server refuses to start) counts as a crash.

What the supervisor knows is written to a small JSON file (`<data>/run/supervisor.json`) that the API shows in
`/readyz`: per part its state, pid, restarts and how it last ended.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0
# The environment variable that tells the API where the supervisor's state file is (set by `aidraw run` only).
STATE_ENV = "AIDRAW_SUPERVISOR_STATE"


@dataclass(frozen=True)
class RestartPolicy:
    max_crashes: int = 5
    window_s: float = 60.0

    def after_crash(self, crashes: deque[float], now: float) -> float | None:
        """Record a crash at `now`; the pause before restarting, or None when the part crashed too often."""
        crashes.append(now)
        while crashes and crashes[0] <= now - self.window_s:
            crashes.popleft()
        if len(crashes) >= self.max_crashes:
            return None
        return min(FIRST_DELAY_S * 2 ** (len(crashes) - 1), MAX_DELAY_S)


@dataclass
class Part:
    """One supervised child process and what the supervisor remembers about it."""

    name: str  # short: nats, postgres, api, projector
    what: str  # for messages: "the embedded NATS server (log: ...)"
    start: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None  # set while it waits to be restarted
    restarts: int = 0
    last_exit: str | None = None
    crashes: deque[float] = field(default_factory=deque)

    @property
    def state(self) -> str:
        return "running" if self.proc is not None else "restarting"

    def report(self) -> dict[str, Any]:
        return {"state": self.state, "pid": self.proc.pid if self.proc else None, "restarts": self.restarts,
                "last_exit": self.last_exit}


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class StateFile:
    """The supervisor's state file, rewritten (in one step, so a reader never sees half of it) when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: dict[str, Any] | None = None

    def update(self, parts: Iterable[Part]) -> None:
        reports = {part.name: part.report() for part in parts}
        if reports == self._written:
            return
        body = {"parts": reports, "updated_at": datetime.now(UTC).isoformat(timespec="seconds")}
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(body))
        partial.replace(self.path)
        self._written = reports


def read_state() -> dict[str, Any] | None:
    """The supervisor's state file named in the environment; None outside `aidraw run` or when unreadable."""
    path = os.environ.get(STATE_ENV)
    if not path:
        return None
    try:
        found = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None
