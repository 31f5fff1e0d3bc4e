"""The process manager's account deletion: a deleted account takes what it owned with it.

`DELETE /api/users/{id}` appends UserDeleted and answers at once; the queue projection
(projectors/account_deletions.py) records the user's id with the deletion's stream sequence. This loop then,
for each queued account:

1. waits until every read model has projected up to that sequence, so that they list everything the user made;
2. deletes, through the ordinary commands and as the user, their tasks (canceling unfinished ones), models,
   datasets, featured collections, parameter sets and images (each one's own Deleted event, so counters, the
   blob reaper, choices and the audit trail follow as for any deletion), and takes back every like the user gave;
3. waits for the read models again and looks once more (a create that was in flight when the account went),
   until nothing is left; then drops the account from the queue.

Every step can be repeated (an object deleted already is skipped), so a crash only means the account is looked at
again. Tags stay: they are shared vocabulary, not belongings. A model under training (locked) is left for the
next round, when its training has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg

from command.app import CommandApp
from command.choices import delete_choice
from command.datasets import delete_dataset
from command.images import delete_image
from command.likes import withdraw_all_likes
from command.models import delete_model
from command.params import delete_param
from command.tasks import delete_task
from infra.actor import Actor
from infra.errors import Conflict, NotFound

log = logging.getLogger("aidraw.process")

# Read-model table -> the command that deletes one of its rows; tasks first (an unfinished one is canceled, so no
# runner makes images for a gone account), models before the datasets and images they use.
BELONGINGS: list[tuple[str, Callable[[CommandApp, Actor, int], int]]] = [
    ("tasks", delete_task),
    ("models", delete_model),
    ("datasets", delete_dataset),
    ("choices", delete_choice),
    ("params", delete_param),
    ("images", delete_image),
]
MAX_ROUNDS = 10


class AccountCleaner:
    def __init__(self, commands: CommandApp, database_url: str, projections: list[str], *,
                 schema: str = "rm", interval_s: float = 1.0, catch_up_s: float = 30.0) -> None:
        self.commands = commands
        self.database_url = database_url
        self.projections = projections
        self.schema = schema
        self.interval_s = interval_s
        self.catch_up_s = catch_up_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
                    while not stop.is_set():
                        await self.sweep(conn)
                        await _sleep_or_stop(stop, self.interval_s)
            except psycopg.errors.UndefinedTable:
                await _sleep_or_stop(stop, 1.0)  # the queue projection has not created its table yet
            except (psycopg.OperationalError, OSError, TimeoutError) as exc:
                log.warning("account cleaner interrupted; retrying", extra={"error": str(exc)})
                await _sleep_or_stop(stop, 1.0)

    async def sweep(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Clean every queued account this instance can lock; the number of accounts finished."""
        exists = await (await conn.execute("SELECT to_regclass('public.account_deletion_queue') IS NOT NULL"
                                           )).fetchone()
        if not (exists and exists[0]):
            return 0  # the queue projection has not created its table yet
        rows = await (await conn.execute(
            "SELECT user_id, sequence FROM public.account_deletion_queue ORDER BY queued_at, user_id")).fetchall()
        finished = 0
        for user_id, sequence in rows:
            got = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (user_id,))).fetchone()
            if not (got and got[0]):
                continue  # another instance is on it
            try:
                if await self._clean(conn, int(user_id), int(sequence)):
                    await conn.execute("DELETE FROM public.account_deletion_queue WHERE user_id = %s", (user_id,))
                    finished += 1
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (user_id,))
        return finished

    async def _clean(self, conn: psycopg.AsyncConnection[Any], user_id: int, sequence: int) -> bool:
        owner = Actor(user_id=user_id, role="user")
        for _ in range(MAX_ROUNDS):
            if not await self._projected(conn, sequence):
                return False  # the read models are behind: next sweep
            belongings = await self._belongings(conn, user_id)
            if not belongings:
                return True
            deleted = 0
            for delete, number in belongings:
                try:
                    sequence = max(sequence, await asyncio.to_thread(delete, self.commands, owner, number))
                    deleted += 1
                except NotFound:
                    pass  # deleted meanwhile
                except Conflict as exc:  # a model in training: it is deletable once that ends
                    log.info("account deletion waits", extra={"user_id": user_id, "object": number,
                                                              "error": exc.detail})
            log.info("account belongings deleted", extra={"user_id": user_id, "deleted": deleted})
            if not deleted:
                return False
        return False

    async def _belongings(self, conn: psycopg.AsyncConnection[Any], user_id: int) -> list[tuple[Any, int]]:
        found: list[tuple[Any, int]] = []
        for table, delete in BELONGINGS:
            rows = await (await conn.execute(
                f"SELECT id FROM {self.schema}.{table} WHERE user_id = %s ORDER BY id", (user_id,))).fetchall()
            found += [(delete, int(number)) for (number,) in rows]
        likes = await (await conn.execute(
            f"SELECT 1 FROM {self.schema}.image_likes WHERE user_id = %s LIMIT 1", (user_id,))).fetchone()
        if likes:
            found.append((_withdraw_likes, user_id))
        return found

    async def _projected(self, conn: psycopg.AsyncConnection[Any], sequence: int) -> bool:
        deadline = asyncio.get_running_loop().time() + self.catch_up_s
        while True:
            rows = await (await conn.execute(
                "SELECT name, position FROM public.projection_checkpoints WHERE name = ANY(%s)",
                (self.projections,))).fetchall()
            positions = {str(name): int(position) for name, position in rows}
            if all(positions.get(name, 0) >= sequence for name in self.projections):
                return True
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)


def _withdraw_likes(app: CommandApp, actor: Actor, user_id: int) -> int:
    assert actor.user_id == user_id
    return withdraw_all_likes(app, user_id)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
