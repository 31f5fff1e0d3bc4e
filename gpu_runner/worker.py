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

The dispatch is by task type (`_PREPARE`); a training item (`data.kind == "train"`, on a `train-<base>`
capability) runs as a `TrainJob` (gpu_runner/train_job.py), one at a time, and between its steps the runner serves
the generations waiting on its other capabilities (`serve_waiting`): training never stops inference.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from events.heartbeats import open_heartbeats
from events.ids import aggregate_uuid
from events.nats_urls import nats_servers
from events.progress import Progress, progress_subject
from events.runs import RunFailed, RunProduced, RunProgressed, RunStarted
from events.store.protocol import AsyncEventStore
from events.work import open_work_stream, read_work_item, work_prefix, work_stream_name
from gpu_runner.model_cache import DEFAULT_MODEL_CACHE_BYTES, ModelFileCache
from gpu_runner.pipeline import Canceled, GenerationRequest, GenerationResult, PipelinePool, StepReport, Unsupported
from gpu_runner.presence import Presence
from gpu_runner.reports import ReportLog
from gpu_runner.train_checkpoints import open_index
from gpu_runner.train_job import Lent, TrainJob
from gpu_runner.work_items import Base, model_files_of, requests_for, store_result, task_of
from infra.storage import BlobNotFound, BlobStore
from infra.urls import NOTHING_ALLOWED, AllowList

log = logging.getLogger("aidraw.runner")
IDLE_WAIT_S = 0.5
CANCEL_POLL_S = 0.5
RESTART_PAUSE_S = 1.0
MILESTONE = 25
_ENDED = {"TaskCanceled", "TaskDeleted", "TaskSucceeded", "TaskFailed"}
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


@dataclass
class _Job:
    msg: Msg
    item: dict[str, Any]
    attempt: int
    requests: list[GenerationRequest] = field(default_factory=list)

    @property
    def task_id(self) -> int:
        return int(self.item["task_id"])


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
            run = _Run(self, nc, store, reports)
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

    async def _serve(self, subs: list[tuple[str, JetStreamContext.PullSubscription]], run: _Run,
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


class _Run:
    """One connection's worth of running: the batch at hand, its cancels and its reports."""

    def __init__(self, worker: Worker, nc: Client, store: AsyncEventStore, reports: ReportLog) -> None:
        self.worker = worker
        self.config = worker.config
        self.nc = nc
        self.store = store
        self.reports = reports
        self.canceled: set[int] = set()
        self.milestones: dict[int, int] = {}
        self.ticks: dict[int, int] = {}
        self.pending: set[asyncio.Task[None]] = set()
        self.js: JetStreamContext | None = None
        self.checkpoints: Any = None  # the training checkpoints' index (gpu_runner/train_checkpoints.py)
        self.inference_subs: list[tuple[str, JetStreamContext.PullSubscription]] = []

    def spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def ended(self, task_id: int) -> bool:
        """Whether the log says the task is over (canceled, deleted, finished): nothing left to run."""
        events = await self.store.select_events(aggregate_uuid("task", task_id))
        return not events or events[-1].topic.rsplit(":", 1)[-1] in _ENDED

    async def batch(self, capability: str, msgs: list[Msg]) -> None:
        try:
            await self._batch(self.config.capabilities[capability], msgs)
        finally:
            self.worker.model_files.release()  # the batch's model files may be evicted again

    async def _batch(self, base: Base, msgs: list[Msg]) -> None:
        jobs: list[_Job] = []
        for index, msg in enumerate(msgs):
            job = _Job(msg, read_work_item(msg.data), int(msg.metadata.num_delivered or 1))
            if await self.ended(job.task_id):
                await msg.ack_sync()
                continue
            await self.reports.report(RunStarted, task_id=job.task_id, attempt=job.attempt,
                                      server_name=self.config.name)
            if job.item["data"].get("kind") == "train":
                await self._train(job, base)
                continue
            try:  # may fetch model files (gigabytes for a checkpoint): every item's lease is kept meanwhile
                unsettled = [j.msg for j in jobs] + msgs[index:]
                job.requests = await self._leased(unsettled, asyncio.to_thread(self._prepare, job.item, base))
            except Unsupported as error:
                await self._fail(job, error.message, final=True)
                continue
            except Exception as error:  # the blob store unreachable, say: another delivery may succeed
                log.exception("preparing task %s failed", job.task_id)
                await self._fail(job, f"the runner could not prepare the task: {type(error).__name__}: {error}"[:500],
                                 final=job.attempt >= self.config.max_deliver)
                continue
            jobs.append(job)
        if jobs:
            await self._generate(jobs)

    async def _leased(self, msgs: list[Msg], work: Awaitable[list[GenerationRequest]]) -> list[GenerationRequest]:
        """Await `work`, renewing the leases of `msgs` every third of `ack_wait` until it is done."""
        running = asyncio.ensure_future(work)
        while not (await asyncio.wait({running}, timeout=self.config.ack_wait_s / 3))[0]:
            for msg in msgs:
                await msg.in_progress()
        return running.result()

    async def _train(self, job: _Job, base: Base) -> None:
        c = self.config
        lent = Lent(self.nc, c.prefix, c.device, self.worker.blobs, self.worker.pool, self.reports,
                    self.checkpoints, c.url_allowed, c.ack_wait_s, c.max_deliver, CANCEL_POLL_S, c.train_samples,
                    self.ended, self.serve_waiting, self.worker.stopping)

        async def fail(reason: str, final: bool) -> None:
            await self._fail(job, reason, final=final)

        await TrainJob(lent, job.msg, job.item, job.attempt, base, fail).run()

    async def serve_waiting(self) -> None:
        """Between training steps: run what waits on this runner's inference capabilities (a cheap look at each
        consumer first, so an idle queue costs one request per step, not a fetch's wait)."""
        assert self.js is not None
        for capability, sub in self.inference_subs:
            info = await self.js.consumer_info(work_stream_name(self.config.stream), f"runners-{capability}")
            if not info.num_pending:
                continue
            try:
                msgs = await sub.fetch(self.config.batch_size, timeout=IDLE_WAIT_S)
            except TimeoutError:  # another runner took them
                continue
            await self.batch(capability, msgs)

    def _prepare(self, item: dict[str, Any], base: Base) -> list[GenerationRequest]:
        prepare = _PREPARE.get(str(item["data"].get("type", "inference")))
        if prepare is None:
            raise Unsupported(f"this runner does not run {item['data'].get('type')!r} tasks")
        return prepare(self, item, base)

    def _inference(self, item: dict[str, Any], base: Base) -> list[GenerationRequest]:
        source = None
        if key := item["data"].get("source_key"):
            try:
                source = self.worker.blobs.get(key)
            except BlobNotFound:
                source = None
        needed = model_files_of(item)
        files = self.worker.model_files.fetch(needed, needed) if needed else {}
        requests = requests_for(item, base, source, files)
        for request in requests:
            self.worker.pool.check(request)
        return requests

    async def _generate(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        requests = [r for job in jobs for r in job.requests]
        for job in jobs:
            self.milestones[job.task_id] = 0

        def on_step(report: StepReport) -> None:
            loop.call_soon_threadsafe(self._step, report, jobs)

        watch = asyncio.ensure_future(self._watch(jobs))
        try:
            outcomes = await asyncio.to_thread(self.worker.pool.generate, requests, on_step=on_step,
                                               is_canceled=lambda key: task_of(key) in self.canceled)
        except Exception as error:  # any failure of the run ends in a report, never a hang
            if len(jobs) > 1:  # one poison task must not fail the tasks fetched with it: each runs alone
                log.warning("a run of %d tasks failed (%s); running each alone", len(jobs), type(error).__name__)
                for job in jobs:  # meanwhile this run's watch keeps every job's lease
                    await self._generate([job])
                return
            job = jobs[0]
            if isinstance(error, Unsupported):
                await self._fail(job, error.message, final=True)
                return
            log.exception("generation failed")
            final = job.attempt >= self.config.max_deliver
            await self._fail(job, f"the runner failed: {type(error).__name__}: {error}"[:500], final=final)
            return
        finally:
            watch.cancel()
            for failed in await asyncio.gather(*self.pending, return_exceptions=True):
                if isinstance(failed, Exception):  # a step or a milestone not told (NATS away): the run still counts
                    log.warning("a progress report was lost: %s: %s", type(failed).__name__, failed)
        by_task: dict[int, list[GenerationResult | Canceled]] = {}
        for outcome in outcomes:
            by_task.setdefault(task_of(outcome.key), []).append(outcome)
        for job in jobs:
            await self._finish(job, by_task[job.task_id])

    async def _finish(self, job: _Job, outcomes: list[GenerationResult | Canceled]) -> None:
        results = [o for o in outcomes if isinstance(o, GenerationResult)]
        if len(results) == len(outcomes):
            pictures = [await asyncio.to_thread(store_result, self.worker.blobs, r) for r in results]
            await self.reports.report(RunProduced, task_id=job.task_id, attempt=job.attempt, pictures=pictures,
                                      prompt_handling=results[0].prompt_handling)
        # A canceled task: the cancel is in the log already; nothing is stored and nothing more to say.
        await job.msg.ack_sync()
        self.canceled.discard(job.task_id)
        self.milestones.pop(job.task_id, None)
        self.ticks.pop(job.task_id, None)

    async def _fail(self, job: _Job, reason: str, *, final: bool) -> None:
        await self.reports.report(RunFailed, task_id=job.task_id, attempt=job.attempt, reason=reason, final=final)
        if not final:
            await job.msg.nak()
        elif job.attempt < self.config.max_deliver:
            await job.msg.ack_sync()  # it can never succeed: no further delivery
        # else: the last delivery failed; the message stays in the stream for inspection

    def _step(self, report: StepReport, jobs: list[_Job]) -> None:
        """On the loop: publish the step (the first image of a task speaks for it) and report milestones."""
        if not report.key.endswith(":0"):
            return
        task_id = task_of(report.key)
        tick = self.ticks[task_id] = self.ticks.get(task_id, 0) + 1
        progress = Progress.of_step("tasks", task_id, tick, report.step, report.total, report.preview_jpeg)
        self.spawn(self.nc.publish(progress_subject(self.config.prefix, "tasks", task_id), progress.encode()))
        milestone = report.step * 100 // max(report.total, 1) // MILESTONE * MILESTONE
        if 0 < milestone < 100 and milestone > self.milestones.get(task_id, 0):
            self.milestones[task_id] = milestone
            attempt = next(job.attempt for job in jobs if job.task_id == task_id)
            self.spawn(self.reports.report(RunProgressed, task_id=task_id, attempt=attempt, progress=milestone))

    async def _watch(self, jobs: list[_Job]) -> None:
        """While the pipeline runs: keep the items' leases, and learn of cancels from the log."""
        every = self.config.ack_wait_s / 3
        last = time.monotonic()
        while True:
            await asyncio.sleep(min(CANCEL_POLL_S, every))
            if time.monotonic() - last >= every:
                last = time.monotonic()
                for job in jobs:
                    await job.msg.in_progress()
            for job in jobs:
                if job.task_id not in self.canceled and await self.ended(job.task_id):
                    self.canceled.add(job.task_id)

    async def gave_up(self, js: JetStreamContext, advisory: Msg) -> None:
        """The server stopped delivering an item (max_deliver reached with no answer: its runners vanished)."""
        notice = json.loads(advisory.data)
        stored = await js.get_msg(work_stream_name(self.config.stream), int(notice["stream_seq"]))
        task_id = int(str(stored.subject).rsplit(".", 1)[-1])
        deliveries = int(notice.get("deliveries", self.config.max_deliver))
        await self.reports.report(
            RunFailed, task_id=task_id, attempt=deliveries, final=True,
            reason=f"the task was delivered {deliveries} times and no runner finished it (a runner stopped while "
                   "running it each time); it is kept for inspection")


_PREPARE: dict[str, Callable[[_Run, dict[str, Any], Base], list[GenerationRequest]]] = {
    "inference": _Run._inference,
}
