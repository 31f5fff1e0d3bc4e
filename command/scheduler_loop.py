"""The scheduler process: follows the task events of the log, and records and carries out the decisions of
command/scheduler.py: a place in the fair order for each new waiting task (`TaskEnqueued`), and releases to the
work queue (`TaskReleased`, then the work item on events/work.py's stream) as runners start tasks.

At start it reads every task event from the beginning (an ordered consumer on `<prefix>.task.>`), so a restarted
scheduler is in the state the log says; only then does it decide. A task that the log says was released but has
not started is published again (the work stream drops it as a duplicate if it is still there), so a crash
between recording a release and publishing it loses nothing. Any error (NATS gone, a write refused) restarts the
whole loop from the log after a short pause. One scheduler should run (the process manager's); a second one
could not record a decision twice (the Task aggregate takes one order and one release), but would keep its own
view of the order until restarted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from command.app import CommandApp, retry_on_conflict
from command.scheduler import Scheduler
from command.tasks import Task
from events.codec import decode_message
from events.nats_urls import nats_servers
from events.work import ensure_work_stream, work_item, work_stream_name, work_subject
from infra.errors import NotFound

log = logging.getLogger("aidraw.scheduler")
IDLE_WAIT_S = 0.5
RESTART_PAUSE_S = 1.0


class SchedulerLoop:
    def __init__(self, commands: CommandApp, nats_url: str, lookahead: int) -> None:
        self.commands = commands
        self.nats_url = nats_url
        self.lookahead = lookahead
        self.settings = commands.settings
        self.caught_up = asyncio.Event()  # tests and /readyz-style checks: the log has been read once

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._run(stop)
            except Exception:  # any failure: start again from the log, which is the truth
                log.exception("scheduler restarting from the log")
                self.caught_up.clear()
                await asyncio.sleep(RESTART_PAUSE_S)

    async def _run(self, stop: asyncio.Event) -> None:
        nc = await nats.connect(nats_servers(self.nats_url), name="aidraw-scheduler", max_reconnect_attempts=-1)
        try:
            js = nc.jetstream()
            await ensure_work_stream(js, self.settings.stream_name, self.settings.subject_prefix,
                                         self.settings.stream_replicas)
            scheduler = Scheduler(lookahead=self.lookahead)
            sub = await js.subscribe(f"{self.settings.subject_prefix}.task.>", stream=self.settings.stream_name,
                                     ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
            await self._catch_up(sub, scheduler)
            await self._republish(js, scheduler)
            self.caught_up.set()
            while not stop.is_set():
                await self._decide(js, scheduler)
                await self._read(sub, scheduler, IDLE_WAIT_S)
        finally:
            await nc.close()

    async def _catch_up(self, sub: JetStreamContext.PushSubscription, scheduler: Scheduler) -> None:
        """Read until the consumer has nothing pending: the state the log describes."""
        info = await sub.consumer_info()
        pending = int(info.num_pending or 0)
        while pending > 0:
            msg = await sub.next_msg(timeout=10)
            self._apply(msg, scheduler)
            pending = int(msg.metadata.num_pending or 0)

    async def _read(self, sub: JetStreamContext.PushSubscription, scheduler: Scheduler, wait: float) -> None:
        try:
            msg = await sub.next_msg(timeout=wait)
        except nats.errors.TimeoutError:
            return
        self._apply(msg, scheduler)
        while msg.metadata.num_pending:  # everything already there, before deciding again
            msg = await sub.next_msg(timeout=10)
            self._apply(msg, scheduler)

    @staticmethod
    def _apply(msg: Msg, scheduler: Scheduler) -> None:
        event = decode_message(msg.headers, msg.data)
        if event is not None:
            scheduler.apply(event)

    async def _decide(self, js: JetStreamContext, scheduler: Scheduler) -> None:
        for task_id, capability, order, cost in scheduler.to_enqueue():
            await asyncio.to_thread(self._record, task_id, _enqueue(capability, order, cost))
        for task_id, capability in scheduler.to_release():
            task = await asyncio.to_thread(self._record, task_id, Task.release)
            if task is not None:
                await self._publish(js, task, capability)

    async def _republish(self, js: JetStreamContext, scheduler: Scheduler) -> None:
        for task_id, entry in scheduler.tasks.items():
            if entry.state == "released":
                task = await asyncio.to_thread(self._load, task_id)
                if task is not None:
                    await self._publish(js, task, entry.capability)

    async def _publish(self, js: JetStreamContext, task: Task, capability: str) -> None:
        prefix = self.settings.subject_prefix
        await js.publish(work_subject(prefix, capability, task.number),
                         work_item(task.number, capability, task.user_id, task.data),
                         stream=work_stream_name(self.settings.stream_name),
                         headers={"Nats-Msg-Id": f"task-{task.number}"})

    def _load(self, task_id: int) -> Task | None:
        try:
            return self.commands.load(Task, "task", task_id)
        except NotFound:
            return None

    def _record(self, task_id: int, decide: Callable[[Task], bool]) -> Task | None:
        """Load the task, apply the decision, store it; None when the task no longer takes it (canceled...)."""
        def attempt() -> Task | None:
            task = self._load(task_id)
            if task is None or not decide(task):
                return None
            self.commands.store(task)
            return task

        return retry_on_conflict(attempt)


def _enqueue(capability: str, order: float, cost: float) -> Callable[[Task], bool]:
    return lambda task: task.enqueue(capability, order, cost)
