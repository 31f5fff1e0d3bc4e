"""What a PostgreSQL projector is: the tables it owns and how each event changes them.

A projector's SQL names its tables as `{s}.table`; the runner fills in the schema, so the same projector
builds the live copy (schema `rm`) and a rebuild's fresh copy (schema `rm_rebuild`) side by side.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from events.codec import decode_message

if TYPE_CHECKING:
    from projectors.buffered import BufferedCursor


LIVE_SCHEMA = "rm"
REBUILD_SCHEMA = "rm_rebuild"


class Projector(ABC):
    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]

    @abstractmethod
    def ddl(self) -> Sequence[str]:
        """CREATE statements (with `{s}` for the schema) for this projector's tables and indexes."""

    @abstractmethod
    async def apply(self, cur: BufferedCursor, s: str, seq: int, event: Any) -> None:
        """Change the tables for one event. Called in stream order, inside the batch's transaction.
        `seq` is the event's stream sequence; events a projector does not know are ignored. The cursor buffers
        writes (see projectors/buffered.py): a statement that reads sees every earlier write."""

    # False for a stream whose old messages expire (image views): its sequences have gaps at the start, which
    # then are no sign of a consumer that ran ahead of the checkpoint.
    contiguous: ClassVar[bool] = True

    def decode(self, headers: dict[str, str] | None, data: bytes) -> Any | None:
        """What a stream message carries for `apply`; None to skip it (claims, idempotency records)."""
        return decode_message(headers, data)

    def sql(self, statement: str, s: str) -> str:
        return statement.replace("{s}", s)
