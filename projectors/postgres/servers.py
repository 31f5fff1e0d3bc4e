"""Read model of the registered runners (`server` aggregates): what each is and serves, whether an admin drained
it, and when it last reported. Whether it is online is not here: the query joins these rows with the live
heartbeats (infra/presence.py) when asked, since that changes every few seconds and is no fact of the log.

`last_report_at` (the runner's last report: started, progressed, produced, failed) is what the servers list
shows as `last_seen` once a runner's heartbeat is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.runs import RunFailed, RunnerStarted, RunProduced, RunProgressed, RunStarted, RunTrained
from events.servers import ServerDeleted, ServerDrainRequested, ServerResumed
from projectors.base import Projector
from projectors.postgres.ids import object_id

_REPORTS = (RunStarted, RunProgressed, RunProduced, RunFailed, RunTrained)


class ServersProjector(Projector):
    name = "servers"
    tables = ("servers",)
    collections = ("servers",)

    def ddl(self) -> Sequence[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {s}.servers ("
            " id bigint PRIMARY KEY, name text NOT NULL, device text NOT NULL, memory_bytes bigint,"
            " capabilities text[] NOT NULL, software_version text NOT NULL, draining boolean NOT NULL DEFAULT false,"
            " last_report_at timestamptz NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
            " version bigint NOT NULL)",
            "CREATE INDEX IF NOT EXISTS servers_created ON {s}.servers (created_at DESC, id DESC)",
        ]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, RunnerStarted):
            await cur.execute(
                self.sql("INSERT INTO {s}.servers (id, name, device, memory_bytes, capabilities, software_version,"
                         " last_report_at, created_at, updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
                         " %s, %s) ON CONFLICT (id) DO NOTHING", s),
                (object_id(event), event.name, event.device, event.memory_bytes, list(event.capabilities),
                 event.software_version, event.timestamp, event.timestamp, event.timestamp, seq),
            )
        elif isinstance(event, ServerDrainRequested | ServerResumed):
            await cur.execute(
                self.sql("UPDATE {s}.servers SET draining = %s, updated_at = %s, version = %s WHERE id = %s", s),
                (isinstance(event, ServerDrainRequested), event.timestamp, seq, object_id(event)),
            )
        elif isinstance(event, _REPORTS):
            await cur.execute(
                self.sql("UPDATE {s}.servers SET last_report_at = greatest(last_report_at, %s), version = %s"
                         " WHERE id = %s", s),
                (event.timestamp, seq, object_id(event)),
            )
        elif isinstance(event, ServerDeleted):
            await cur.execute(self.sql("DELETE FROM {s}.servers WHERE id = %s", s), (object_id(event),))
