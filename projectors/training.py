"""Training requests, a process manager (projectors/process.py): a model set to `ready` becomes a train task.

- The queue projection, `TrainingRequestQueue`, queues each `ModelTrainingRequested` as (model id, the event's
  stream sequence) in public.training_requests; a later request of the same model replaces the sequence.
- The worker, `TrainingStarter`, hands each queued model to the command it was given (command/training.py
  `start_training`, handed in by aidraw/process_tasks.py: projectors/ does not import command/), which makes the
  task, or refuses the request with a reason, from the model's state in the log. That command acts only on a
  model still `ready`, so handling an item twice (a crash before `finish`, a redelivered or replayed event) makes
  no second task. `finish` removes the item only if no newer request replaced it meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from events.models import ModelTrainingRequested
from projectors.base import Projector
from projectors.postgres.ids import object_id
from projectors.process import Conn, ProcessManager

QUEUE_DDL = ("CREATE TABLE IF NOT EXISTS public.training_requests (model_id bigint PRIMARY KEY,"
             " sequence bigint NOT NULL, queued_at timestamptz NOT NULL DEFAULT now())")

# model id -> the stream sequence written (0: nothing to do for that model)
StartTraining = Callable[[int], int]


class TrainingRequestQueue(Projector):
    name = "training_requests"
    tables = ()

    def ddl(self) -> Sequence[str]:
        return [QUEUE_DDL]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, ModelTrainingRequested):
            await cur.execute("INSERT INTO public.training_requests (model_id, sequence) VALUES (%s, %s)"
                              " ON CONFLICT (model_id) DO UPDATE SET sequence = EXCLUDED.sequence",
                              (object_id(event), seq))


class TrainingStarter(ProcessManager[tuple[int, int]]):
    name = "training_requests"

    def __init__(self, database_url: str, start: StartTraining, *, interval_s: float = 0.5) -> None:
        super().__init__(database_url)
        self.start = start
        self.interval_s = interval_s

    @property
    def queue(self) -> Projector:
        return TrainingRequestQueue()

    async def pending(self, conn: Conn) -> Sequence[tuple[int, int]]:
        rows = await (await conn.execute(
            "SELECT model_id, sequence FROM public.training_requests ORDER BY queued_at, model_id")).fetchall()
        return [(int(model_id), int(sequence)) for model_id, sequence in rows]

    def item_key(self, item: tuple[int, int]) -> str:
        return str(item[0])

    async def handle(self, conn: Conn, item: tuple[int, int]) -> bool:
        await asyncio.to_thread(self.start, item[0])
        return True

    async def finish(self, conn: Conn, item: tuple[int, int]) -> None:
        await conn.execute("DELETE FROM public.training_requests WHERE model_id = %s AND sequence = %s", item)
