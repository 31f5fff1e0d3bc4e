"""The runner's run -> report -> ack, for the work items `Worker` (gpu_runner/worker.py) took: one batch at a time.

`Batches.batch` skips the items of tasks the log says are over, reports `RunStarted`, hands a training item to a
`TrainJob` (gpu_runner/train_job.py), prepares the rest by task type (`_PREPARE`, with their model files fetched
under renewed leases), runs them through the pipeline in a thread while `_watch` renews the leases and learns of
cancels, publishes each step's progress, then reports `RunProduced` or `RunFailed` and acks (or naks). The rules
of failure, retry and poison tasks are worker.py's docstring's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from events.ids import aggregate_uuid
from events.progress import Progress, progress_subject
from events.runs import RunFailed, RunProduced, RunProgressed, RunStarted
from events.store.protocol import AsyncEventStore
from events.work import read_work_item, work_stream_name
from gpu_runner.pipeline import Canceled, GenerationRequest, GenerationResult, StepReport, Unsupported
from gpu_runner.reports import ReportLog
from gpu_runner.train_job import Lent, TrainJob
from gpu_runner.work_items import Base, model_files_of, requests_for, store_result, task_of
from infra.storage import BlobNotFound

if TYPE_CHECKING:
    from gpu_runner.worker import Worker

log = logging.getLogger("aidraw.runner")
IDLE_WAIT_S = 0.5
CANCEL_POLL_S = 0.5
MILESTONE = 25
_ENDED = {"TaskCanceled", "TaskDeleted", "TaskSucceeded", "TaskFailed"}


@dataclass
class Job:
    msg: Msg
    item: dict[str, Any]
    attempt: int
    requests: list[GenerationRequest] = field(default_factory=list)

    @property
    def task_id(self) -> int:
        return int(self.item["task_id"])



class Batches:
    """One connection's worth of running: the batch at hand, its cancels and its reports (`batch` is run -> report
    -> ack for what `Worker` took)."""

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
        jobs: list[Job] = []
        for index, msg in enumerate(msgs):
            job = Job(msg, read_work_item(msg.data), int(msg.metadata.num_delivered or 1))
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

    async def _train(self, job: Job, base: Base) -> None:
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

    async def _generate(self, jobs: list[Job]) -> None:
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

    async def _finish(self, job: Job, outcomes: list[GenerationResult | Canceled]) -> None:
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

    async def _fail(self, job: Job, reason: str, *, final: bool) -> None:
        await self.reports.report(RunFailed, task_id=job.task_id, attempt=job.attempt, reason=reason, final=final)
        if not final:
            await job.msg.nak()
        elif job.attempt < self.config.max_deliver:
            await job.msg.ack_sync()  # it can never succeed: no further delivery
        # else: the last delivery failed; the message stays in the stream for inspection

    def _step(self, report: StepReport, jobs: list[Job]) -> None:
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

    async def _watch(self, jobs: list[Job]) -> None:
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


_PREPARE: dict[str, Callable[[Batches, dict[str, Any], Base], list[GenerationRequest]]] = {
    "inference": Batches._inference,
}
