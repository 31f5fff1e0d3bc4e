"""The projector loop: fetch -> apply -> commit -> ack.

Each projector follows the whole domain stream through its own durable pull consumer, recreated at start from
the checkpoint stored in PostgreSQL (the checkpoint, not the consumer, is the truth). A batch of messages is
applied and the checkpoint moved in ONE transaction; the batch is acked only after the commit. A crash at any
point therefore leaves rows and checkpoint together: redelivered events are skipped as already applied.

Stream sequences of stored messages are contiguous (rejected batches consume none and the stream denies
deletes), so a message whose sequence is not exactly checkpoint+1 means the consumer ran ahead (an earlier batch
failed to commit): the runner re-positions the consumer instead of applying out of order.

One instance of a projector is active at a time (a PostgreSQL advisory lock); others wait as hot standbys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nats
import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events.store.bridge import log_connection_errors
from projectors import checkpoints
from projectors.base import LIVE_SCHEMA, Projector
from projectors.buffered import BufferedCursor
from projectors.fetch import BatchFetcher

log = logging.getLogger("aidraw.projector")
LEADER_LOCK_CLASS = 7263002


class _Gap(Exception):
    """The consumer delivered past the checkpoint: reposition it."""


@dataclass
class Target:
    nats_url: str
    stream: str
    database_url: str


def leader_lock(checkpoint_name: str) -> tuple[int, int]:
    """The two-int advisory lock key its active instance holds (pg_locks: classid, objid, objsubid 2)."""
    return LEADER_LOCK_CLASS, zlib.crc32(checkpoint_name.encode()) & 0x7FFFFFFF


@dataclass
class ProjectionRunner:
    projector: Projector
    target: Target
    schema: str = LIVE_SCHEMA
    checkpoint_name: str = ""
    batch_size: int = 1000
    durable: bool = True
    on_progress: Callable[[int], None] | None = None
    position: int = 0
    _sub: BatchFetcher | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.checkpoint_name = self.checkpoint_name or self.projector.name

    @property
    def consumer_name(self) -> str:
        return "proj_" + "".join(c if c.isalnum() else "_" for c in self.checkpoint_name)

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
        nc = await nats.connect(self.target.nats_url, max_reconnect_attempts=-1, name=self.consumer_name,
                                error_cb=log_connection_errors(log, self.checkpoint_name))
        js = nc.jetstream()
        try:
            async with await psycopg.AsyncConnection.connect(self.target.database_url) as conn:
                await self._become_leader(conn, stop)
                await self._setup(conn)
                while not stop.is_set():
                    try:
                        await self._follow(conn, js, stop, until)
                        return
                    except _Gap:
                        log.info("consumer ran ahead of the checkpoint; repositioning",
                                 extra={"projector": self.checkpoint_name, "position": self.position})
        finally:
            if self._sub is not None:
                await self._sub.stop()
                self._sub = None
            await nc.close()

    async def _become_leader(self, conn: psycopg.AsyncConnection[Any], stop: asyncio.Event) -> None:
        await conn.set_autocommit(True)
        waited = False
        while not stop.is_set():
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                            leader_lock(self.checkpoint_name))).fetchone()
            if row and row[0]:
                if waited:
                    log.info("%s: the active instance is gone; this one takes over", self.checkpoint_name,
                             extra={"projector": self.checkpoint_name})
                break
            if not waited:
                waited = True
                log.info("%s: another instance is active (it holds the leader lock); this one waits as a hot "
                         "standby and takes over when it stops", self.checkpoint_name,
                         extra={"projector": self.checkpoint_name})
            await asyncio.sleep(1.0)
        await conn.set_autocommit(False)

    async def _setup(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.commit()
        await checkpoints.setup(conn)
        async with conn.transaction():
            # Projectors start together: IF NOT EXISTS does not make concurrent CREATEs safe, so take turns.
            await conn.execute("SELECT pg_advisory_xact_lock(7263004)")
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            for statement in self.projector.ddl():
                await conn.execute(self.projector.sql(statement, self.schema))  # type: ignore[arg-type]
        async with conn.transaction():
            self.position = await checkpoints.lock_and_read(conn, self.checkpoint_name)

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

    async def _follow(self, conn: psycopg.AsyncConnection[Any], js: JetStreamContext, stop: asyncio.Event,
                      until: int | None) -> None:
        sub = await self._subscribe(js)
        # The next batch is fetched while this one is applied: NATS and PostgreSQL work side by side.
        upcoming = asyncio.ensure_future(sub.fetch(self.batch_size, timeout=0.5))
        try:
            while not stop.is_set() and (until is None or self.position < until):
                msgs = await upcoming  # fetch
                upcoming = asyncio.ensure_future(sub.fetch(self.batch_size, timeout=0.5))
                if until is not None:
                    msgs = [m for m in msgs if m.metadata.sequence.stream <= until]
                if msgs:
                    await self._apply_batch(conn, msgs)  # -> apply -> commit
                    await msgs[-1].ack()  # -> ack (AckPolicy.ALL covers the whole batch)
        finally:
            upcoming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await upcoming

    async def _apply_batch(self, conn: psycopg.AsyncConnection[Any], msgs: list[Msg]) -> None:
        async with conn.transaction():
            committed = position = await checkpoints.lock_and_read(conn, self.checkpoint_name)
            async with conn.cursor() as raw:
                cur = BufferedCursor(raw)  # runs of one statement go out as one executemany
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    if seq <= position:
                        continue  # redelivered: already applied
                    if seq != position + 1 and self.projector.contiguous:
                        self.position = committed
                        raise _Gap
                    event = self.projector.decode(msg.headers, msg.data)
                    if event is not None:
                        await self.projector.apply(cur, self.schema, seq, event)
                    position = seq
                await cur.flush()
            await checkpoints.store(conn, self.checkpoint_name, position)
        self.position = position
        if self.on_progress is not None:
            self.on_progress(position)
