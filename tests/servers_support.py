"""Runners for tests that need one in the servers list but no GPU work: a registration as a real runner writes it
(gpu_runner/reports.py), with no heartbeat after it, so the server shows offline."""

from __future__ import annotations

import asyncio

import nats

from events.store.aio import AsyncJetStreamStore
from gpu_runner.reports import ReportLog
from tests.system import System


def register_server(system: System, name: str, capabilities: tuple[str, ...] = ("default",)) -> int:
    """The new server's id."""
    async def register() -> int:
        nc = await nats.connect(system.nats_url)
        try:
            reports = ReportLog(AsyncJetStreamStore(nc, system.stream, system.prefix))
            await reports.register(name, "cpu", list(capabilities), "test", None)
            return reports.server_id
        finally:
            await nc.close()

    return asyncio.run(register())
