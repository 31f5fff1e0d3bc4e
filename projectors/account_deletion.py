"""Account deletion, a process manager (projectors/process.py): a deleted account takes what it owned with it.

`DELETE /api/users/{id}` appends UserDeleted and answers at once. Then:

- the queue projection, `AccountDeletionQueue`, keeps its own list of what every user owns
  (public.account_belongings: their tasks, models, datasets, featured collections, parameter sets, images,
  and the images they like), projected from the log like any read model, and on UserDeleted queues the user's id with
  the deletion's stream sequence (public.account_deletion_queue);
- the worker, `AccountDeleter`, for each queued account deletes what the list names through the ordinary
  commands, as the user (each object's own Deleted event, so counters, the blob reaper, choices and the audit
  trail follow as for any deletion; an unfinished task is canceled first, so no runner makes images for a gone
  account), and takes back every like the user gave; it waits until its own
  projection has reached the sequences those commands wrote and looks again (a create that was in flight when
  the account went), until nothing is left; then it drops the account from the queue.

The worker reads only its own projection, never a read model, and the commands answer from their aggregates.
They are handed in by the composition root (aidraw/process_tasks.py): projectors/ does not import command/.
Every step can be repeated (an object deleted already is skipped), so a crash only means the account is looked
at again. Tags stay: they are shared vocabulary, not belongings. A model under training (locked) is left for the
next round, when its training has ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from events.choices import ChoiceCreated, ChoiceDeleted
from events.datasets import DatasetCreated, DatasetDeleted
from events.images import ImageDeleted, ImageUploaded
from events.likes import ImageLiked, ImageUnliked
from events.models import ModelCreated, ModelDeleted
from events.params import ParamCreated, ParamDeleted
from events.tasks import TaskCreated, TaskDeleted
from events.users import UserDeleted
from infra.actor import Actor
from infra.errors import Conflict, NotFound
from projectors import checkpoints
from projectors.base import Projector
from projectors.postgres.ids import object_id
from projectors.process import Conn, ProcessManager

log = logging.getLogger("aidraw.process")

QUEUE_DDL = ("CREATE TABLE IF NOT EXISTS public.account_deletion_queue ("
             " user_id bigint PRIMARY KEY, sequence bigint NOT NULL, queued_at timestamptz NOT NULL DEFAULT now())")
BELONGINGS_DDL = [
    "CREATE TABLE IF NOT EXISTS public.account_belongings (user_id bigint NOT NULL, kind text NOT NULL,"
    " object_id bigint NOT NULL, PRIMARY KEY (user_id, kind, object_id))",
    "CREATE INDEX IF NOT EXISTS account_belongings_object ON public.account_belongings (kind, object_id)",
]

# What a user can own, in the order they are deleted: tasks first, models before the datasets and images they
# use; then the likes the user gave ("like": the liked image's id; all are taken back by one command).
KINDS = ("task", "model", "dataset", "choice", "param", "image", "like")
_CREATED = {TaskCreated: "task", ModelCreated: "model", DatasetCreated: "dataset", ChoiceCreated: "choice",
            ParamCreated: "param", ImageUploaded: "image"}
_DELETED = {TaskDeleted: "task", ModelDeleted: "model", DatasetDeleted: "dataset", ChoiceDeleted: "choice",
            ParamDeleted: "param", ImageDeleted: "image"}
_ADD = ("INSERT INTO public.account_belongings (user_id, kind, object_id) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING")
MAX_ROUNDS = 10

# kind -> the command that deletes one object of that kind as `actor` (for "like": takes back all the user's
# likes; the id passed is the user's); returns the stream sequence it wrote.
Deleter = Callable[[Actor, int], int]


class AccountDeletionQueue(Projector):
    name = "account_deletion"
    tables = ()

    def ddl(self) -> Sequence[str]:
        return [QUEUE_DDL, *BELONGINGS_DDL]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        kind = _CREATED.get(type(event))
        if kind is not None:
            await cur.execute(_ADD, (event.user_id, kind, object_id(event)))
        elif (kind := _DELETED.get(type(event))) is not None:
            await cur.execute("DELETE FROM public.account_belongings WHERE kind = %s AND object_id = %s",
                              (kind, object_id(event)))
        elif isinstance(event, ImageLiked):
            await cur.execute(_ADD, (object_id(event), "like", event.image_id))
        elif isinstance(event, ImageUnliked):
            await cur.execute("DELETE FROM public.account_belongings WHERE user_id = %s AND kind = 'like'"
                              " AND object_id = %s", (object_id(event), event.image_id))
        elif isinstance(event, UserDeleted):
            await cur.execute("INSERT INTO public.account_deletion_queue (user_id, sequence) VALUES (%s, %s) "
                              "ON CONFLICT DO NOTHING", (object_id(event), seq))


class AccountDeleter(ProcessManager[tuple[int, int]]):
    name = "account_deletion"

    def __init__(self, database_url: str, deleters: Mapping[str, Deleter], *, interval_s: float = 1.0,
                 catch_up_s: float = 30.0) -> None:
        super().__init__(database_url)
        missing = set(KINDS) - set(deleters)
        assert not missing, f"no command to delete {sorted(missing)}"
        self.deleters = deleters
        self.interval_s = interval_s
        self.catch_up_s = catch_up_s

    @property
    def queue(self) -> Projector:
        return AccountDeletionQueue()

    async def pending(self, conn: Conn) -> Sequence[tuple[int, int]]:
        rows = await (await conn.execute(
            "SELECT user_id, sequence FROM public.account_deletion_queue ORDER BY queued_at, user_id")).fetchall()
        return [(int(user_id), int(sequence)) for user_id, sequence in rows]

    def item_key(self, item: tuple[int, int]) -> str:
        return str(item[0])

    async def finish(self, conn: Conn, item: tuple[int, int]) -> None:
        await conn.execute("DELETE FROM public.account_deletion_queue WHERE user_id = %s", (item[0],))

    async def handle(self, conn: Conn, item: tuple[int, int]) -> bool:
        user_id, sequence = item
        owner = Actor(user_id=user_id, role="user")
        for _ in range(MAX_ROUNDS):
            if not await checkpoints.wait_until_projected(conn, [self.queue.name], sequence, self.catch_up_s):
                return False  # its own projection is behind: next round
            belongings = await self.belongings(conn, user_id)
            if not belongings:
                return True
            deleted = 0
            for kind, number in belongings:
                try:
                    written = await asyncio.to_thread(self.deleters[kind], owner, number)
                    sequence = max(sequence, written)
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

    async def belongings(self, conn: Conn, user_id: int) -> list[tuple[str, int]]:
        """What the user still owns, in deletion order (their likes as one entry)."""
        rows = await (await conn.execute(
            "SELECT kind, object_id FROM public.account_belongings WHERE user_id = %s"
            " ORDER BY array_position(%s::text[], kind), object_id", (user_id, list(KINDS)))).fetchall()
        found = [(str(kind), int(number)) for kind, number in rows if kind != "like"]
        if any(kind == "like" for kind, _ in rows):
            found.append(("like", user_id))
        return found
