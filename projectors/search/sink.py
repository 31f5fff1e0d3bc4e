"""The Elasticsearch projection sink (the second shape of projectors/sink.py), for the search projector.

- `apply_batch` writes each event's documents at once, whole, with `version_type=external` and version = the
  event's stream sequence (projectors/search/images.py): a replayed event is refused by the index (409) and
  changes nothing, so nothing needs staging and `abort` has nothing to drop.
- `commit` refreshes the index (the batch's documents become searchable), then writes the checkpoint: a
  document `<name>` of the checkpoint index (infra/search_index.py) with version = position, so the checkpoint
  never runs ahead of the documents and never goes backwards (a version not above the stored one is refused:
  another writer moved it, `CheckpointMoved`).
- The checkpoint document is the truth (`load_checkpoint` reads it). Its position is then copied into
  PostgreSQL's projection_checkpoints with NOTIFY, which the API's read-your-writes and /readyz watch; a crash
  between the two leaves that copy behind until the next commit (a reader waits longer; nothing is lost).
- One instance is active at a time: the PostgreSQL leader lock every projection takes (projectors/postgres/sink.py).
- A batch holds the PostgreSQL copy's row lock from `apply_batch` to `commit`, as a PostgreSQL batch does, so a
  rebuild's swap (projectors/search/rebuild.py) never interleaves with a batch's writes.

Not run on the development machines (no Elasticsearch server can be installed there): the contract suite
(tests/contract/test_image_search.py) runs it where AIDRAW_ELASTICSEARCH_URL names a server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from elasticsearch import ConflictError, NotFoundError

from events.changes import ObjectsChanged
from infra.search_index import checkpoint_index_name, ensure_checkpoint_index
from projectors import checkpoints
from projectors.base import LIVE_SCHEMA
from projectors.postgres.sink import PostgresSink
from projectors.search.images import ImageSearchProjector
from projectors.sink import CheckpointMoved, Projected


class ElasticsearchSink:
    def __init__(self, projector: ImageSearchProjector, database_url: str, schema: str = LIVE_SCHEMA,
                 checkpoint_name: str = "") -> None:
        self.projector = projector
        self.schema = schema
        self.name = checkpoint_name or projector.name
        # The leader lock and the PostgreSQL copy of the position (its own tables: none).
        self._leader = PostgresSink(projector, database_url, schema, self.name)
        self._index = ""
        self._checkpoints = checkpoint_index_name(projector.prefix)

    async def open(self, stop: asyncio.Event) -> bool:
        if not await self._leader.open(stop):
            return False
        self._index = await self.projector.index(self.schema)
        await ensure_checkpoint_index(self.projector.client, self._checkpoints)
        return True

    async def close(self) -> None:
        await self._leader.close()
        await self.projector.close()

    async def load_checkpoint(self) -> int:
        try:
            found = await self.projector.client.get(index=self._checkpoints, id=self.name)
        except NotFoundError:
            return 0
        return int(found["_source"]["position"])

    async def apply_batch(self, position: int, events: Sequence[Projected]) -> None:
        # First the PostgreSQL copy's row lock, held until the commit: a rebuild swapping the index holds it, so
        # this batch writes nothing until the swap is over (then through the alias, into the new index).
        await checkpoints.lock_and_read(self._leader.conn, self.name)
        if await self.load_checkpoint() != position:
            await self.abort()
            raise CheckpointMoved
        for item in events:
            await self.projector.apply(None, self.schema, item.sequence, item.event)

    async def commit(self, position: int) -> list[ObjectsChanged]:
        client = self.projector.client
        await client.indices.refresh(index=self._index)
        try:
            await client.index(index=self._checkpoints, id=self.name, document={"position": position},
                               version=position, version_type="external")
        except ConflictError:
            raise CheckpointMoved from None
        conn = self._leader.conn
        await checkpoints.store(conn, self.name, position)
        await conn.commit()
        return []  # the images read model announces the same images (projectors/postgres/images.py)

    async def abort(self) -> None:
        """Nothing staged (the documents written are replay-safe): release the checkpoint row."""
        await self._leader.abort()
