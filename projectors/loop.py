"""The projection loop: fetch -> apply -> commit -> ack -> announce.

Each projection follows a stream through its own durable pull consumer, recreated at start from the checkpoint
its sink stored (the checkpoint, not the consumer, is the truth). A batch of messages is applied and the
checkpoint moved in ONE commit of the sink (projectors/sink.py); the batch is acked only after it. A crash at
any point therefore leaves effects and checkpoint together: redelivered events are skipped as already applied.
After the commit the loop announces the objects the batch changed (events/changes.py) on core NATS.

Stream sequences of stored messages are contiguous (rejected batches consume none and the stream denies
deletes), so a message whose sequence is not exactly checkpoint+1 means the consumer ran ahead (an earlier batch
failed to commit): the loop re-positions the consumer instead of applying out of order.

One instance of a projection is active at a time (the sink's `open` waits for that); others wait as hot standbys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events.changes import ObjectsChanged, changed_subject
from events.nats_urls import nats_servers
from events.store.bridge import log_connection_errors
from projectors.base import LIVE_SCHEMA, Projector
from projectors.fetch import BatchFetcher
from projectors.postgres.sink import PostgresSink, leader_lock
from projectors.sink import CheckpointMoved, Projected, ProjectionSink

log = logging.getLogger("aidraw.projector")

__all__ = ["ProjectionLoop", "Target", "leader_lock"]


class _Gap(Exception):
    """The consumer delivered past the checkpoint: reposition it."""


@dataclass
class Target:
    nats_url: str
    stream: str
    database_url: str
    announce_prefix: str = ""  # the domain subject prefix: announce changes on `<prefix>_changed.*` ("" = don't)


@dataclass
class ProjectionLoop:
    projector: Projector
    target: Target
    schema: str = LIVE_SCHEMA
    checkpoint_name: str = ""
    batch_size: int = 1000
    durable: bool = True
    on_progress: Callable[[int], None] | None = None
    sink: ProjectionSink | None = None  # default: the projector's PostgreSQL tables in `schema`
    position: int = 0
    _sub: BatchFetcher | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.checkpoint_name = self.checkpoint_name or self.projector.name

    @property
    def consumer_name(self) -> str:
        return "proj_" + "".join(c if c.isalnum() else "_" for c in self.checkpoint_name)

    def _new_sink(self) -> ProjectionSink:
        if self.sink is not None:
            return self.sink
        return PostgresSink(self.projector, self.target.database_url, self.schema, self.checkpoint_name)

    async def run(self, stop: asyncio.Event, until: int | None = None) -> int:
        """Project until `stop` is set, or until the checkpoint reaches `until`. Returns the final position.

        A failure (a server gone, or an event this projector cannot apply) never takes other projections down:
        it is logged and retried from the checkpoint with a growing pause, so a fixed bug or a returning server
        resumes the projection where it stopped. A bounded run (`until`, a rebuild) gives up after a few tries."""
        pause, failures = 0.5, 0
        while not stop.is_set():
            reached = self.position
            try:
                await self._run_once(stop, until)
                return self.position
            except Exception:
                failures += 1
                if self.position > reached:  # it had been projecting: a new incident starts with a short pause
                    pause = 0.5
                log.exception("projection failed; retrying from the checkpoint",
                              extra={"projector": self.checkpoint_name, "position": self.position,
                                     "failures": failures})
                if until is not None and failures >= 3:
                    raise
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                pause = min(pause * 2, 30.0)
        return self.position

    async def _run_once(self, stop: asyncio.Event, until: int | None) -> None:
        nc = await nats.connect(nats_servers(self.target.nats_url), max_reconnect_attempts=-1, name=self.consumer_name,
                                error_cb=log_connection_errors(log, self.checkpoint_name))
        sink = self._new_sink()
        try:
            if not await sink.open(stop):
                return
            self.position = await sink.load_checkpoint()
            while not stop.is_set():
                try:
                    await self._follow(sink, nc, stop, until)
                    return
                except (_Gap, CheckpointMoved):
                    self.position = await sink.load_checkpoint()
                    log.info("consumer ran ahead of the checkpoint; repositioning",
                             extra={"projector": self.checkpoint_name, "position": self.position})
        finally:
            if self._sub is not None:
                await self._sub.stop()
                self._sub = None
            await sink.close()
            await nc.close()

    async def _subscribe(self, js: JetStreamContext) -> BatchFetcher:
        if self._sub is not None:
            await self._sub.stop()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.position + 1,
            ack_policy=AckPolicy.ALL,
            max_ack_pending=self.batch_size * 4,
            ack_wait=60,
            inactive_threshold=None if self.durable else 30,
        )
        if self.durable:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_consumer(self.target.stream, self.consumer_name)
            config.durable_name = self.consumer_name
        info = await js.add_consumer(self.target.stream, config)
        self._sub = await BatchFetcher(js._nc, self.target.stream, info.name).start()
        return self._sub

    async def _follow(self, sink: ProjectionSink, nc: Client, stop: asyncio.Event, until: int | None) -> None:
        sub = await self._subscribe(nc.jetstream())
        # The next batch is fetched while this one is applied: NATS and the sink work side by side.
        upcoming = asyncio.ensure_future(sub.fetch(self.batch_size, timeout=0.5))
        try:
            while not stop.is_set() and (until is None or self.position < until):
                msgs = await upcoming  # fetch
                upcoming = asyncio.ensure_future(sub.fetch(self.batch_size, timeout=0.5))
                if until is not None:
                    msgs = [m for m in msgs if m.metadata.sequence.stream <= until]
                if msgs:
                    changed = await self._apply_batch(sink, msgs)  # -> apply -> commit
                    await msgs[-1].ack()  # -> ack (AckPolicy.ALL covers the whole batch)
                    await self._announce(nc, changed)  # -> announce
        finally:
            upcoming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await upcoming

    async def _apply_batch(self, sink: ProjectionSink, msgs: list[Msg]) -> list[ObjectsChanged]:
        events: list[Projected] = []
        position = self.position
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq <= position:
                continue  # redelivered: already applied
            if seq != position + 1 and self.projector.contiguous:
                raise _Gap
            event = self.projector.decode(msg.headers, msg.data)
            if event is not None:
                events.append(Projected(seq, event))
            position = seq
        if position == self.position:
            return []
        try:
            await sink.apply_batch(self.position, events)
            changed = await sink.commit(position)
        except BaseException:
            with contextlib.suppress(Exception):
                await sink.abort()
            raise
        self.position = position
        if self.on_progress is not None:
            self.on_progress(position)
        return changed

    async def _announce(self, nc: Client, changed: list[ObjectsChanged]) -> None:
        if not self.target.announce_prefix:
            return
        for change in changed:
            await nc.publish(changed_subject(self.target.announce_prefix, change.collection), change.encode())
