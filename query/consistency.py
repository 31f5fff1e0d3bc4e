"""Read-your-writes: a caller's query waits (bounded) until the projections reached the caller's last write.

The API remembers the last stream sequence each caller wrote (from the `X-Event-Sequence` of its command
answers); a client can also send `X-Event-Sequence: N` on a GET to wait for N explicitly (useful behind several
API replicas). Projectors announce their checkpoints with PostgreSQL NOTIFY; a poll covers a missed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from infra.errors import Invalid
from infra.http import SEQUENCE_HEADER
from infra.tokens import presented_token
from query.services import QuerySide

log = logging.getLogger("aidraw.consistency")

CHANNEL = "aidraw_projection"
STALE_HEADER = "X-Consistency"


class CallerSequences:
    """The last sequence each caller wrote, for the most recent callers (bounded memory)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seqs: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity

    def wrote(self, caller: str, seq: int) -> None:
        self._seqs[caller] = max(seq, self._seqs.get(caller, 0))
        self._seqs.move_to_end(caller)
        while len(self._seqs) > self._capacity:
            self._seqs.popitem(last=False)

    def last(self, caller: str) -> int:
        return self._seqs.get(caller, 0)


class ProjectionWatcher:
    """Knows how far every projection has got; lets queries wait for a sequence."""

    def __init__(self, database_url: str, projections: list[str], poll_s: float = 0.25) -> None:
        self.database_url = database_url
        self.projections = projections
        self.positions: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._poll_s = poll_s
        self._task: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        """The sequence every projection has reached."""
        if not self.projections:
            return 0
        return min(self.positions.get(name, 0) for name in self.projections)

    async def start(self) -> None:
        await self._refresh_from_table()
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _refresh_from_table(self) -> None:
        try:
            async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
                rows = await (await conn.execute(
                    "SELECT name, position FROM public.projection_checkpoints")).fetchall()
        except psycopg.errors.UndefinedTable:
            return
        except psycopg.OperationalError as exc:
            log.warning("cannot read projection checkpoints", extra={"error": str(exc)})
            return
        await self._update({str(n): int(p) for n, p in rows})

    async def _update(self, found: dict[str, int]) -> None:
        async with self._changed:
            for name, pos in found.items():
                if pos > self.positions.get(name, -1):
                    self.positions[name] = pos
            self._changed.notify_all()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await self._refresh_from_table()
                    gen = conn.notifies(timeout=self._poll_s)
                    while True:
                        async for note in gen:
                            name, _, pos = note.payload.rpartition(":")
                            await self._update({name: int(pos)})
                        await self._refresh_from_table()
                        gen = conn.notifies(timeout=self._poll_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep serving; reconnect
                log.warning("projection watcher reconnecting", extra={"error": str(exc)})
                await asyncio.sleep(1.0)

    async def wait_for(self, seq: int, timeout: float) -> bool:
        if seq <= self.position:
            return True
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self.position >= seq)
            return True
        except TimeoutError:
            return False


def token_caller_key(token: str) -> str:
    return "t:" + hashlib.sha256(token.encode()).hexdigest()


def caller_key(request: Request) -> str:
    """A caller is its token (however it is sent), or else its address and user agent."""
    token = presented_token(request.headers.get("authorization"), request.headers.get("token"))
    if token:
        return token_caller_key(token)
    client = request.client.host if request.client else "?"
    return f"a:{client}:{request.headers.get('user-agent', '')}"


async def consistent_read(request: Request, services: QuerySide) -> None:
    """Dependency of every query route: wait until this caller's own writes are visible."""
    wanted = services.caller_sequences.last(caller_key(request))
    explicit = request.headers.get(SEQUENCE_HEADER)
    if explicit is not None:
        if not (explicit.isascii() and explicit.isdigit() and len(explicit) <= 18):
            raise Invalid(f"{SEQUENCE_HEADER} is the stream sequence a write answered with (plain digits).",
                          field=f"header.{SEQUENCE_HEADER}")
        wanted = max(wanted, int(explicit))
    if wanted and not await services.watcher.wait_for(wanted, services.settings.read_your_writes_timeout_s):
        request.state.stale = True  # the app's middleware marks the answer, an error answer (a 404) included


Consistent = Annotated[None, Depends(consistent_read)]
