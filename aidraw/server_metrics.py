"""The runners alive now on /metrics, by the status their heartbeats say (infra/presence.py): online, busy,
draining. Offline runners are not counted: the servers list shows them."""

from __future__ import annotations

import functools

from prometheus_client import Gauge

from aidraw.ops import REGISTRY
from infra.presence import RunnerPresence

STATUSES = ("online", "busy", "draining")
_presences: list[RunnerPresence] = []  # this process's mirror(s) (one per app)

SERVERS = Gauge("aidraw_servers", "Runners alive now (a heartbeat within AIDRAW_RUNNER_TTL), by status",
                ["status"], registry=REGISTRY)


def _count(status: str) -> int:
    return sum(1 for presence in _presences for beat in presence.everyone().values() if beat.status == status)


for _status in STATUSES:
    SERVERS.labels(_status).set_function(functools.partial(_count, _status))


def follow(presence: RunnerPresence) -> None:
    _presences.append(presence)


def forget(presence: RunnerPresence) -> None:
    _presences.remove(presence)
