"""What a PostgreSQL projector is: the tables it owns and how each event changes them.

A projector's SQL names its tables as `{s}.table`; the sink fills in the schema, so the same projector
builds the live copy (schema `rm`) and a rebuild's fresh copy (schema `rm_rebuild`) side by side. Its tables
are created by the migration step (projectors/migrate.py) from `ddl()`, so they exist before any query runs; a
change of their shape is a rebuild (`aidraw rebuild NAME`), never an ALTER.

A projector touches only its own tables. It reads others' where its rows depend on them (a like counts only
while its image exists) and never writes them; it has no effect outside the database (no blob deletion, no
message): follow-up work goes to a process manager (projectors/process.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from events.changes import collection_of_kind
from events.codec import decode_message
from events.ids import KINDS

if TYPE_CHECKING:
    from projectors.postgres.buffered import BufferedCursor


ID_MASK = 2**64 - 1  # an aggregate id's low 64 bits are the object's number (events/ids.py)
LIVE_SCHEMA = "rm"
REBUILD_SCHEMA = "rm_rebuild"


@cache
def _by_kind_code(collections: tuple[str, ...]) -> dict[int, str]:
    """Kind code (events/ids.py KINDS) -> collection, for the kinds whose collection is in `collections`."""
    return {code: collection_of_kind(kind) for kind, code in KINDS.items() if collection_of_kind(kind) in collections}


class Projector(ABC):
    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    # The HTTP collections whose objects this projector's rows show: an event of an aggregate of one of these
    # kinds announces its object as changed after the commit (see `changed`).
    collections: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def ddl(self) -> Sequence[str]:
        """CREATE statements (with `{s}` for the schema) for this projector's tables and indexes."""

    @abstractmethod
    async def apply(self, cur: BufferedCursor, s: str, seq: int, event: Any) -> None:
        """Change the tables for one event. Called in stream order, inside the batch's transaction.
        `seq` is the event's stream sequence; events a projector does not know are ignored. The cursor buffers
        writes (see projectors/postgres/buffered.py): a statement that reads sees every earlier write."""

    def deferred_ddl(self) -> Sequence[str]:
        """Indexes a rebuild makes only once its fresh copy has caught up with the log: one bulk build from the
        rows instead of an insert per event (an HNSW index builds many times faster so). The live schema gets
        them with ddl() (`aidraw migrate`), so its queries never run without them."""
        return ()

    # False for a stream whose old messages expire (image views): its sequences have gaps at the start, which
    # then are no sign of a consumer that ran ahead of the checkpoint.
    contiguous: ClassVar[bool] = True

    def decode(self, headers: dict[str, str] | None, data: bytes) -> Any | None:
        """What a stream message carries for `apply`; None to skip it (claims, idempotency records)."""
        return decode_message(headers, data)

    def changed(self, event: Any) -> Iterable[tuple[str, int]]:
        """(collection, id) of the objects `event` changed in this read model, announced after the commit.
        By default the event's own aggregate, when its collection is one of `collections`. Called for every
        event projected, so it is kept cheap: the aggregate's kind is looked up by its code in the id."""
        originator = getattr(event, "originator_id", None)
        if originator is None:
            return ()
        collection = _by_kind_code(self.collections).get((originator.int >> 64) & 0xFFFF)
        return ((collection, originator.int & ID_MASK),) if collection is not None else ()

    def sql(self, statement: str, s: str) -> str:
        return statement.replace("{s}", s)
