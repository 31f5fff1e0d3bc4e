"""The command side of the runners' reports: a durable consumer on the runners' report events
(`<prefix>.server.>`, events/runs.py) that applies each with command/run_reports.py, in order, then acks.

Every report is applied idempotently (run_reports.py asks the Task aggregate whether the fact still counts), so
the at-least-once delivery of the consumer is enough: a report applied twice changes nothing the second time.
It runs in the process manager beside the scheduler (aidraw/process_tasks.py). Any error restarts the loop after
a short pause; the unacknowledged reports come again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from command.app import CommandApp
from command.run_reports import (
    ProducedImage,
    record_failed,
    record_produced,
    record_progress,
    record_started,
    record_trained,
)
from events.codec import decode_message
from events.ids import split_uuid
from events.nats_urls import nats_servers
from events.runs import RunFailed, RunProduced, RunProgressed, RunStarted, RunTrained

log = logging.getLogger("aidraw.run_reports")
DURABLE = "run-reports"
FETCH = 100
IDLE_WAIT_S = 0.5
ACK_WAIT_S = 30.0
RESTART_PAUSE_S = 1.0


def apply_report(app: CommandApp, event: Any) -> int:
    """One runner report on the Task aggregate; the sequence written, 0 when it changed nothing."""
    if isinstance(event, RunStarted):
        split = split_uuid(event.originator_id)
        return record_started(app, event.task_id, split[1] if split else None, event.server_name, event.attempt)
    if isinstance(event, RunProgressed):
        return record_progress(app, event.task_id, event.progress)
    if isinstance(event, RunProduced):
        return record_produced(app, event.task_id, [ProducedImage(**p) for p in event.pictures],
                               event.prompt_handling)
    if isinstance(event, RunFailed):
        return record_failed(app, event.task_id, event.reason, event.final)
    if isinstance(event, RunTrained):
        return record_trained(app, event.task_id, event.artefact_key, event.artefact_bytes, cover_of(event.cover))
    return 0  # RunnerStarted and what later kinds add: not a task's business


def cover_of(picture: dict[str, Any] | None) -> ProducedImage | None:
    """RunTrained's cover as a stored picture (its ProducedImage fields; any other key is not ours to read). A
    cover without a stored picture's essentials is left out (logged): the model is trained all the same, and no
    image the read models could not hold enters the log."""
    if picture is None:
        return None
    fields = {name: picture.get(name) for name in ProducedImage.__dataclass_fields__}
    if not (isinstance(fields["blob_key"], str) and isinstance(fields["content_type"], str)
            and all(isinstance(fields[n], int) and not isinstance(fields[n], bool) for n in ("width", "height"))):
        log.warning("a training cover without its picture's fields was left out", extra={"keys": sorted(picture)})
        return None
    return ProducedImage(**fields)  # type: ignore[arg-type]  # checked above


class RunReportLoop:
    def __init__(self, commands: CommandApp, nats_url: str) -> None:
        self.commands = commands
        self.nats_url = nats_url
        self.settings = commands.settings

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._run(stop)
            except Exception:
                log.exception("run-report loop restarting")
                await asyncio.sleep(RESTART_PAUSE_S)

    async def _run(self, stop: asyncio.Event) -> None:
        nc = await nats.connect(nats_servers(self.nats_url), name="aidraw-run-reports", max_reconnect_attempts=-1)
        try:
            sub = await nc.jetstream().pull_subscribe(
                f"{self.settings.subject_prefix}.server.>", durable=DURABLE, stream=self.settings.stream_name,
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                                      ack_wait=ACK_WAIT_S, max_ack_pending=FETCH))
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(FETCH, timeout=IDLE_WAIT_S)
                except TimeoutError:  # nats-py raises its own or asyncio's (both are TimeoutError) when idle
                    continue
                for msg in msgs:
                    event = decode_message(msg.headers, msg.data)
                    if event is not None:
                        await asyncio.to_thread(apply_report, self.commands, event)
                    await msg.ack_sync()
        finally:
            await nc.close()
