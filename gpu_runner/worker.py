"""The runner: take -> run -> report -> ack, for the capabilities it serves.

- **Take.** One durable pull consumer per capability on the work stream (events/work.py), shared by every runner
  of that capability (a WorkQueue stream refuses overlapping consumers), explicit acks, `ack_wait` and
  `max_deliver` from the config. Up to `batch_size` work items are fetched at once; the pipeline batches the
  compatible ones (docs/generation.md). A task that the log says is finished or canceled is acked and skipped.
  The model files a task needs are fetched (gpu_runner/model_cache.py) while the items' leases are renewed.
- **Run.** The pipeline runs in a thread. Meanwhile every work item gets `in_progress()` every third of
  `ack_wait`, and the tasks' state is read from the log every `CANCEL_POLL_S`: a cancel makes `is_canceled`
  true and the pipeline stops that member at its next step (no decode, nothing stored). Each step is published
  on the task's progress subject for the live feed (core NATS, events/progress.py), previews as JPEG data URLs.
- **Report.** Facts only, as events of the runner's own `server` aggregate (gpu_runner/reports.py): started,
  milestones, produced (after the PNG, thumbnail and descriptor are stored), failed. The command side
  (command/run_report_loop.py) applies them with the task's rules.
- **Ack** after the report is stored. A failure that may pass is reported as not final and the item is
  delivered again (nak); the last allowed delivery's failure is final and the message stays in the stream
  (kept for inspection). An item whose runner vanished `max_deliver` times is failed from the server's
  MAX_DELIVERIES advisory. A request the runner can never serve (`Unsupported`) fails at once. When a run of
  several tasks fails, each is run again alone (same delivery), so a poison task fails by itself and the tasks
  fetched with it go on.

Here: the connection, the registration and heartbeats, and the take loop (`Worker._serve`); each batch taken is
run, reported and acked by gpu_runner/batches.py (`Batches.batch`). The dispatch is by task type (`_PREPARE`
there); a training item (`data.kind == "train"`, on a `train-<base>` capability) runs as a `TrainJob`
(gpu_runner/train_job.py), one at a time, and between its steps the runner serves the generations waiting on its
other capabilities (`serve_waiting`): training never stops inference.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from events.heartbeats import open_heartbeats
from events.nats_urls import nats_servers
from events.store.protocol import AsyncEventStore
from events.work import open_work_stream, work_prefix, work_stream_name
from gpu_runner.batches import IDLE_WAIT_S, Batches
from gpu_runner.model_cache import DEFAULT_MODEL_CACHE_BYTES, ModelFileCache
from gpu_runner.pipeline import PipelinePool
from gpu_runner.presence import Presence
from gpu_runner.reports import ReportLog
from gpu_runner.train_checkpoints import open_index
from gpu_runner.work_items import Base
from infra.storage import BlobStore
from infra.urls import NOTHING_ALLOWED, AllowList

log = logging.getLogger("aidraw.runner")
RESTART_PAUSE_S = 1.0
TRAIN_PREFIX = "train-"  # events/tasks.py capability_of


@dataclass(frozen=True)
class RunnerConfig:
    nats_url: str
    stream: str
    prefix: str
    name: str
    device: str
    capabilities: dict[str, Base]  # capability -> the base it runs on
    batch_size: int = 4
    ack_wait_s: float = 60.0
    max_deliver: int = 3
    version: str = "0.1.0"
    url_allowed: AllowList = NOTHING_ALLOWED  # private hosts a training dataset's URLs may name
    train_samples: int = 10  # sample images per training run
    ttl_s: float = 15.0  # heartbeats (gpu_runner/presence.py): offline this long after the last one
    memory_bytes: int | None = None  # the device's memory, for the servers list


class Worker:
    def __init__(self, config: RunnerConfig, pool: PipelinePool, blobs: BlobStore,
                 event_store: Callable[[Client], AsyncEventStore], model_files: ModelFileCache | None = None) -> None:
        """`event_store` makes the AsyncEventStore on the runner's connection (the composition root picks it);
        `model_files` is the local cache of model files (adapters, checkpoints; a temporary folder if None)."""
        self.event_store = event_store
        self.config = config
        self.pool = pool
        self.blobs = blobs
        self.model_files = model_files or ModelFileCache(
            Path(tempfile.gettempdir()) / f"aidraw-model-files-{config.name}", DEFAULT_MODEL_CACHE_BYTES, blobs)
        self.ready = asyncio.Event()  # tests: the consumers exist and the runner is registered
        self.server_id: int | None = None
        self.stopping = asyncio.Event()
        self.reports: ReportLog | None = None  # its server aggregate, once registered
        self.presence: Presence  # set on each connection (gpu_runner/presence.py)

    async def run(self, stop: asyncio.Event) -> None:
        self.stopping = stop  # a training run checkpoints and gives its item back when it is set
        while not stop.is_set():
            try:
                await self._run(stop)
            except Exception:  # NATS gone, a report refused: start again; unacked items come back
                log.exception("runner restarting")
                self.ready.clear()
                await asyncio.sleep(RESTART_PAUSE_S)

    async def _run(self, stop: asyncio.Event) -> None:
        c = self.config
        nc = await nats.connect(nats_servers(c.nats_url), name=f"aidraw-runner-{c.name}", max_reconnect_attempts=-1)
        try:
            js = nc.jetstream()
            await open_work_stream(js, c.stream, c.prefix)
            store = self.event_store(nc)
            reports = await self._reports(store)
            subs = [(cap, await self._consumer(js, cap)) for cap in sorted(c.capabilities)]
            run = Batches(self, nc, store, reports)
            run.js, run.checkpoints = js, await open_index(js, c.stream)
            run.inference_subs = [(cap, sub) for cap, sub in subs if not cap.startswith(TRAIN_PREFIX)]

            async def gave_up(msg: Msg) -> None:
                run.spawn(run.gave_up(js, msg))

            await nc.subscribe(f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{work_stream_name(c.stream)}.*",
                               cb=gave_up)
            self.presence = Presence(await open_heartbeats(js, c.stream, c.ttl_s), reports, c.ttl_s,
                                     sorted(c.capabilities))
            beating = asyncio.ensure_future(self.presence.run())
            self.ready.set()
            try:
                await self._serve(subs, run, stop)
            finally:
                beating.cancel()
                await asyncio.gather(beating, return_exceptions=True)
        finally:
            await nc.close()

    async def _reports(self, store: AsyncEventStore) -> ReportLog:
        """The runner's server aggregate: registered once per process, so a reconnect keeps its id (and a drain)."""
        if self.reports is None:
            reports = ReportLog(store)
            c = self.config
            await reports.register(c.name, c.device, sorted(c.capabilities), c.version, c.memory_bytes)
            self.reports, self.server_id = reports, reports.server_id
        else:
            self.reports.store = store
            await self.reports.sync()
        return self.reports

    async def _serve(self, subs: list[tuple[str, JetStreamContext.PullSubscription]], run: Batches,
                     stop: asyncio.Event) -> None:
        """Fetch and run while not stopped; a draining runner fetches nothing (it has finished its batch)."""
        while not stop.is_set():
            if not self.presence.taking_work:
                await asyncio.sleep(IDLE_WAIT_S)
                continue
            for capability, sub in subs:
                if not self.presence.taking_work:
                    break
                try:
                    size = 1 if capability.startswith(TRAIN_PREFIX) else self.config.batch_size
                    msgs = await sub.fetch(size, timeout=IDLE_WAIT_S)
                except TimeoutError:  # nats-py raises its own or asyncio's (both are TimeoutError) when idle
                    continue
                self.presence.busy_with([int(str(m.subject).rsplit(".", 1)[-1]) for m in msgs])
                try:
                    await run.batch(capability, msgs)
                finally:
                    self.presence.idle()

    async def _consumer(self, js: JetStreamContext, capability: str) -> JetStreamContext.PullSubscription:
        c = self.config
        return await js.pull_subscribe(
            f"{work_prefix(c.prefix)}.{capability}.>", durable=f"runners-{capability}",
            stream=work_stream_name(c.stream),
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=c.ack_wait_s, max_deliver=c.max_deliver))
