"""Read model of tasks: one row per live task, its lifecycle as the events record it.

`tag_ids` are the tags requested for the task's images (the `tag=` filter); a deleted tag leaves every task here.
`capability`, `queue_order` and `released` are the scheduler's recorded decisions (TaskEnqueued, TaskReleased);
a waiting task's queue position and estimated start change with every other task, so the query side computes
them from these columns when asked (docs/tasks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from events.tags import TagDeleted
from events.tasks import (
    RELEASED_REASON,
    TaskCanceled,
    TaskCreated,
    TaskDeleted,
    TaskEnqueued,
    TaskFailed,
    TaskProgressed,
    TaskReleased,
    TaskStarted,
    TaskSucceeded,
    TaskWaiting,
    capability_of,
    task_result,
)
from projectors.base import Projector
from projectors.postgres.ids import object_id


class TasksProjector(Projector):
    name = "tasks"
    tables = ("tasks", "task_usage")
    collections = ("tasks",)

    def ddl(self) -> Sequence[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {s}.tasks ("
            " id bigint PRIMARY KEY, user_id bigint NOT NULL, name text NOT NULL, type text NOT NULL,"
            " status text NOT NULL, progress int NOT NULL DEFAULT 0, data jsonb NOT NULL, result jsonb,"
            " error text, waiting_reason text, server_id bigint, server_name text, attempt int NOT NULL DEFAULT 0,"
            " tag_ids bigint[] NOT NULL DEFAULT '{}', public boolean NOT NULL, capability text,"
            " queue_order double precision, released boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL,"
            " updated_at timestamptz NOT NULL, started_at timestamptz, finished_at timestamptz,"
            " version bigint NOT NULL)",
            # Seconds of runner time per user (started -> finished, every attempt's end counted once): kept apart
            # from the rows, so that deleting a task does not give its time back.
            "CREATE TABLE IF NOT EXISTS {s}.task_usage (user_id bigint PRIMARY KEY, run_seconds double precision"
            " NOT NULL)",
            "CREATE INDEX IF NOT EXISTS tasks_created ON {s}.tasks (created_at DESC, id DESC)",
            "CREATE INDEX IF NOT EXISTS tasks_user_created ON {s}.tasks (user_id, created_at DESC, id DESC)",
            "CREATE INDEX IF NOT EXISTS tasks_tag_ids ON {s}.tasks USING gin (tag_ids)",
            "CREATE INDEX IF NOT EXISTS tasks_unfinished ON {s}.tasks (status, created_at)"
            " WHERE status IN ('waiting', 'running')",
            "CREATE INDEX IF NOT EXISTS tasks_queue ON {s}.tasks (capability, released, queue_order, id)"
            " WHERE status = 'waiting'",
        ]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, TaskCreated):
            data = {k: v for k, v in event.data.items() if k != "source_key"}
            await cur.execute(
                self.sql("INSERT INTO {s}.tasks (id, user_id, name, type, status, data, tag_ids, public,"
                         " capability, created_at, updated_at, version) VALUES (%s, %s, %s, %s, 'initial', %s, %s,"
                         " %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING", s),
                (object_id(event), event.user_id, event.name, event.type, Jsonb(data), list(event.tag_ids),
                 event.public, capability_of(event.data), event.timestamp,
                 event.timestamp, seq),
            )
        elif isinstance(event, TaskWaiting):
            await self._set(cur, s, seq, event, status="waiting", waiting_reason=event.reason, server_id=None,
                            server_name=None)
        elif isinstance(event, TaskEnqueued):
            await self._set(cur, s, seq, event, capability=event.capability, queue_order=event.order)
        elif isinstance(event, TaskReleased):
            await self._set(cur, s, seq, event, released=True, waiting_reason=RELEASED_REASON)
        elif isinstance(event, TaskStarted):
            await self._set(cur, s, seq, event, status="running", waiting_reason=None, server_id=event.server_id,
                            server_name=event.server_name, attempt=event.attempt, progress=0)
            await cur.execute(self.sql("UPDATE {s}.tasks SET started_at = COALESCE(started_at, %s) WHERE id = %s",
                                       s), (event.timestamp, object_id(event)))
        elif isinstance(event, TaskProgressed):
            await self._set(cur, s, seq, event, progress=event.progress)
        elif isinstance(event, TaskSucceeded | TaskFailed | TaskCanceled):
            await self._count_usage(cur, s, event)
            await self._finish(cur, s, seq, event)
        elif isinstance(event, TaskDeleted):
            await cur.execute(self.sql("DELETE FROM {s}.tasks WHERE id = %s", s), (object_id(event),))
        elif isinstance(event, TagDeleted):
            tag = object_id(event)
            await cur.execute(
                self.sql("UPDATE {s}.tasks SET tag_ids = array_remove(tag_ids, %s::bigint)"
                         " WHERE tag_ids @> ARRAY[%s::bigint]", s),
                (tag, tag),
            )

    async def _count_usage(self, cur: Any, s: str, event: Any) -> None:
        await cur.execute(
            self.sql("INSERT INTO {s}.task_usage (user_id, run_seconds) SELECT user_id,"
                     " greatest(0, extract(epoch FROM %s - started_at)) FROM {s}.tasks WHERE id = %s"
                     " AND started_at IS NOT NULL AND status = 'running' ON CONFLICT (user_id) DO UPDATE"
                     " SET run_seconds = {s}.task_usage.run_seconds + EXCLUDED.run_seconds", s),
            (event.timestamp, object_id(event)),
        )

    async def _finish(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, TaskSucceeded):
            await self._set(cur, s, seq, event, status="success", progress=100, finished_at=event.timestamp,
                            result=Jsonb(task_result(event.image_ids, event.prompt_handling, event.model_path)))
        elif isinstance(event, TaskFailed):
            await self._set(cur, s, seq, event, status="error", error=event.error, finished_at=event.timestamp)
        else:
            await self._set(cur, s, seq, event, status="canceled", waiting_reason=None, finished_at=event.timestamp)

    async def _set(self, cur: Any, s: str, seq: int, event: Any, **values: Any) -> None:
        columns = ", ".join(f"{column} = %s" for column in values)
        await cur.execute(
            self.sql(f"UPDATE {{s}}.tasks SET {columns}, updated_at = %s, version = %s WHERE id = %s", s),
            (*values.values(), event.timestamp, seq, object_id(event)),
        )
