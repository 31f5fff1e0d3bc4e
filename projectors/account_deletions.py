"""The queue of deleted accounts whose belongings the process manager still has to delete.

A projector without tables: on UserDeleted it queues the user's id (in public.account_deletion_queue, with its
checkpoint, exactly once like any projection) together with the deletion's stream sequence, the point up to
which the read models must have projected before they list everything the user owned. The queue is work to
do, not a read model: it lives in `public` beside the checkpoints, and the process manager
(command/account_deletion.py) empties it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.users import UserDeleted
from projectors.base import Projector
from projectors.postgres.ids import object_id

QUEUE_DDL = ("CREATE TABLE IF NOT EXISTS public.account_deletion_queue ("
             " user_id bigint PRIMARY KEY, sequence bigint NOT NULL, queued_at timestamptz NOT NULL DEFAULT now())")


class AccountDeletionQueue(Projector):
    name = "account_deletions"
    tables = ()

    def ddl(self) -> Sequence[str]:
        return [QUEUE_DDL]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, UserDeleted):
            await cur.execute("INSERT INTO public.account_deletion_queue (user_id, sequence) VALUES (%s, %s) "
                              "ON CONFLICT DO NOTHING", (object_id(event), seq))
