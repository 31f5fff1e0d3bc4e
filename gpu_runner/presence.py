"""The runner's presence: its heartbeat in the runners' bucket (events/heartbeats.py), and the admin's drain.

Every `CHECK_S` the loop reads the runner's own `server` aggregate for an admin's drain or resume
(gpu_runner/reports.py `sync`, a read of what is new only), and puts the heartbeat when its state changed or
every third of the TTL: `online`, `busy` with the task ids of the batch at hand, or `draining`. The worker asks
`taking_work` before each fetch, so a draining runner finishes the batch it holds and fetches nothing more; a
resume lets it fetch again. A failed put or read is logged and tried again on the next tick: the worker's own
work never stops for its heartbeat (a runner whose heartbeats fail looks offline, and says why in its log).
On a clean stop the entry is deleted, so the runner shows offline at once rather than after the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

from nats.js.kv import KeyValue

from events.heartbeats import Heartbeat, HeartbeatStatus, heartbeat_interval
from gpu_runner.reports import ReportLog

log = logging.getLogger("aidraw.runner")
CHECK_S = 1.0


class Presence:
    def __init__(self, kv: KeyValue, reports: ReportLog, ttl_s: float, capabilities: list[str]) -> None:
        self.kv = kv
        self.capabilities = capabilities
        self.reports = reports
        self.interval = heartbeat_interval(ttl_s)
        self.task_ids: list[int] = []
        self._changed = asyncio.Event()
        self._put: tuple[HeartbeatStatus, list[int]] | None = None
        self._put_at = 0.0

    @property
    def status(self) -> HeartbeatStatus:
        if self.reports.draining:
            return "draining"
        return "busy" if self.task_ids else "online"

    @property
    def taking_work(self) -> bool:
        return not self.reports.draining

    def busy_with(self, task_ids: list[int]) -> None:
        self.task_ids = list(task_ids)
        self._changed.set()

    def idle(self) -> None:
        self.busy_with([])

    async def run(self) -> None:
        """Until canceled (the worker's connection ends)."""
        try:
            while True:
                try:
                    await self.beat()
                except Exception as exc:  # NATS away, the bucket gone: the next tick tries again
                    log.warning("heartbeat failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                # asyncio.wait, not wait_for: Python 3.11's wait_for can swallow the cancel that ends this loop when
                # the event is set at the same moment (a runner then never stopped: its SIGTERM waited on this task)
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({changed}, timeout=CHECK_S)
                finally:
                    changed.cancel()
                self._changed.clear()
        finally:
            with contextlib.suppress(Exception):  # gone at once on a clean stop; the TTL covers the rest
                await asyncio.wait_for(self.kv.delete(str(self.reports.server_id)), 2)

    async def beat(self) -> None:
        await self.reports.sync()
        state = (self.status, list(self.task_ids))
        if state != self._put or time.monotonic() - self._put_at >= self.interval:
            beat = Heartbeat(self.reports.server_id, state[0], state[1], time.time(), self.capabilities)
            await self.kv.put(str(self.reports.server_id), beat.encode())
            self._put, self._put_at = state, time.monotonic()


def device_memory(device: str) -> int | None:
    """The device's memory in bytes (a CUDA device's total; the machine's RAM for the CPU), None when unknown."""
    try:
        if device.startswith("cuda"):
            import torch

            return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, RuntimeError, AssertionError, AttributeError):
        return None
