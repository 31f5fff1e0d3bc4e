"""Rebuild the Elasticsearch image index from sequence 0 beside the live one, then swap it in by alias: the same
steps as projectors/rebuild.py, in the search cluster's terms (docs/search.md "Switching, rebuilding, checking").

- Readers and the live projector name the index `<prefix>-images-rm` (infra/search_index.index_name); after
  the first rebuild that name is an alias of a concrete index `<prefix>-images-g<time>`. A rebuild builds a new
  concrete index behind the alias `<prefix>-images-rm-rebuild` (the projector's name for schema rm_rebuild),
  with its own checkpoint document `search_images@rebuild`.
- The swap is one `_aliases` call (atomic in Elasticsearch): the live alias moves to the new index, and the old
  index goes (`remove_index` when the live name was still a concrete index). While it runs, the rebuild holds
  the PostgreSQL copy of the live checkpoint row, which the live search projector takes before each batch
  (projectors/search/sink.py), so no batch writes into the old index meanwhile; the live checkpoint document is
  set to the rebuilt position.
- The check compares the two indexes before the swap: the same ids at the same versions (a document's version
  is the stream sequence of the last event applied to it, so equal versions are equal documents).
- The new index's mapping is the configured embedding recipe's (infra/search_index.mapping). A live index of
  another width (the recipe changed: the live projector refuses it until this swap) is not compared: the
  report says `reshaped`, and the rebuild does not wait for a live projector that cannot write.

Not run on the development machines (no Elasticsearch server can be installed there); the alias actions are
unit-tested (tests/unit/test_search_alias_swap.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from infra.embeddings import Recipe
from infra.search_index import SETTINGS, checkpoint_index_name, embedding_dims, index_name, mapping
from projectors import checkpoints
from projectors.base import LIVE_SCHEMA, REBUILD_SCHEMA
from projectors.loop import ProjectionLoop, Target
from projectors.rebuild import LIVE_CATCH_UP_S, _await_live
from projectors.search.images import ImageSearchProjector
from projectors.search.sink import ElasticsearchSink

PAGE = 5_000


@dataclass
class IndexRebuildReport:
    index: str  # the new concrete index, now behind the live alias
    position: int
    compared: bool
    live_documents: int
    rebuilt_documents: int
    same_documents: bool
    reshaped: dict[str, int | None] = field(default_factory=dict)  # live index -> its other embedding width


def swap_actions(live: str, fresh: str, rebuild_alias: str, live_targets: list[str], live_is_alias: bool
                 ) -> list[dict[str, Any]]:
    """The one `_aliases` call of the swap: the live name to the fresh index, the rebuild alias away, and the
    old index deleted (as an alias's target, or as the concrete index the live name still is)."""
    actions: list[dict[str, Any]] = [{"remove": {"index": fresh, "alias": rebuild_alias}}]
    if live_is_alias:
        actions += [{"remove_index": {"index": old}} for old in live_targets]
    elif live_targets:
        actions.append({"remove_index": {"index": live}})
    actions.append({"add": {"index": fresh, "alias": live, "is_write_index": True}})
    return actions


async def _targets(client: Any, name: str) -> tuple[list[str], bool]:
    """(the concrete indexes `name` stands for, whether it is an alias); ([], False) when nothing has it."""
    if await client.indices.exists_alias(name=name):
        found = await client.indices.get_alias(name=name)
        return sorted(found.keys()), True
    if await client.indices.exists(index=name):
        return [name], False
    return [], False


async def _fingerprint(client: Any, index: str) -> tuple[int, str]:
    """(documents, digest of every (id, version) in id order) of one index."""
    digest, count, after = hashlib.sha256(), 0, None
    while True:
        page = await client.search(index=index, size=PAGE, sort=[{"id": "asc"}], source=False, version=True,
                                   query={"match_all": {}}, search_after=after, track_total_hits=False)
        hits = page["hits"]["hits"]
        for hit in hits:
            digest.update(f"{hit['_id']}:{hit['_version']};".encode())
        count += len(hits)
        if len(hits) < PAGE:
            return count, digest.hexdigest()
        after = hits[-1]["sort"]


async def _position(client: Any, marks: str, name: str) -> int:
    found = await client.options(ignore_status=404).get(index=marks, id=name)
    return int(found["_source"]["position"]) if found.get("found") else 0


async def _build_to(projector: ImageSearchProjector, target: Target, until: int,
                    progress: Callable[[int], None] | None) -> int:
    name = f"{projector.name}@rebuild"
    sink = ElasticsearchSink(projector, target.database_url, REBUILD_SCHEMA, name)
    loop = ProjectionLoop(projector, target, schema=REBUILD_SCHEMA, checkpoint_name=name, durable=False,
                          on_progress=progress, sink=sink)
    return await loop.run(asyncio.Event(), until=until)


async def _other_widths(client: Any, name: str, recipe: Recipe) -> dict[str, int | None]:
    """The indexes behind `name` whose embedding width is not `recipe`'s (none when `name` does not exist)."""
    if not await client.indices.exists(index=name):
        return {}
    found = embedding_dims(dict(await client.indices.get_mapping(index=name)))
    return {index: dims for index, dims in found.items() if dims != recipe.dims}


async def rebuild_index(url: str, prefix: str, target: Target, log_end: int,
                        progress: Callable[[int], None] | None = None,
                        live_catch_up_s: float = LIVE_CATCH_UP_S, recipe: Recipe | None = None) -> IndexRebuildReport:
    """`recipe`: the embedding recipe of the new index (None: the configured one)."""
    projector = ImageSearchProjector(url, prefix, recipe)
    name = projector.name
    live, rebuild_alias = index_name(prefix, LIVE_SCHEMA), index_name(prefix, REBUILD_SCHEMA)
    fresh = f"{prefix.lower()}-images-g{time.time_ns()}"
    client = await projector.connected()
    marks = checkpoint_index_name(prefix)
    try:
        leftovers, _ = await _targets(client, rebuild_alias)  # an interrupted rebuild's index
        for old in leftovers:
            await client.indices.delete(index=old)
        if await client.indices.exists(index=marks):
            await client.options(ignore_status=404).delete(index=marks, id=f"{name}@rebuild")
        await client.indices.create(index=fresh, mappings=mapping(projector.recipe), settings=SETTINGS,
                                    aliases={rebuild_alias: {}})
        reshaped = await _other_widths(client, live, projector.recipe)
    finally:
        await projector.close()
    built = await _build_to(projector, target, log_end, progress)
    if not reshaped:  # a live index of another width has no live projector writing to it: nothing to wait for
        async with await psycopg.AsyncConnection.connect(target.database_url, autocommit=True) as conn:
            await _await_live(conn, name, built, live_catch_up_s)

    client = await projector.connected()
    try:
        async with await psycopg.AsyncConnection.connect(target.database_url) as conn, conn.transaction():
            await checkpoints.lock_and_read(conn, name)  # the live batches wait from here
            live_position = await _position(client, marks, name)  # the truth; the PostgreSQL copy may lag
            if live_position > built:
                built = await _build_to(projector, target, live_position, progress)
                client = await projector.connected()
            await client.indices.refresh(index=fresh)
            targets, is_alias = await _targets(client, live)
            compared = live_position == built and bool(targets) and not reshaped
            live_count, live_digest = await _fingerprint(client, live) if targets else (0, "")
            fresh_count, fresh_digest = await _fingerprint(client, fresh)
            await client.indices.update_aliases(actions=swap_actions(live, fresh, rebuild_alias, targets, is_alias))
            if built > live_position:
                await client.index(index=marks, id=name, document={"position": built}, version=built,
                                   version_type="external")
                await checkpoints.store(conn, name, built)
            await client.options(ignore_status=404).delete(index=marks, id=f"{name}@rebuild")
        await _forget_rebuild_checkpoint(target.database_url, name)
    finally:
        await projector.close()
    return IndexRebuildReport(index=fresh, position=built, compared=compared, live_documents=live_count,
                              rebuilt_documents=fresh_count, same_documents=compared and live_digest == fresh_digest,
                              reshaped=reshaped)


async def _forget_rebuild_checkpoint(database_url: str, name: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM public.projection_checkpoints WHERE name = %s", (f"{name}@rebuild",))
