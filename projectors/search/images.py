"""The search projector: the Elasticsearch image index (infra/search_index.py) from the domain stream.

It runs in the ordinary projection loop (projectors/loop.py) over its own sink (projectors/search/sink.py): the
checkpoint is a document of the search cluster, written after the batch's documents, so a crash replays the
batch. Replays are harmless because every write is a
whole document with `version_type=external` and version = the event's stream sequence: the index refuses
(409) a version not above the one it holds, and that refusal is the "already applied" of this projector.
Partial changes (ImageChanged, ImageEmbedded, likes) read the document, change it, and write it whole with
the new sequence. A deleted image's document is deleted with its sequence as version.

The index holds the configured embedding recipe's vectors (infra/embeddings.Recipe): its mapping's width is the
recipe's, an index of another width is refused with the rebuild command to run (infra/search_index.check_shape),
and only the ImageEmbedded events of that recipe are copied (`embed`), as the PostgreSQL read model does.

Not run on the development machines (no Elasticsearch server can be installed there).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from elasticsearch import ConflictError, NotFoundError

from events.images import ImageChanged, ImageDeleted, ImageEmbedded, ImageUploaded
from events.likes import ImageLiked, ImageUnliked
from infra.embeddings import Recipe, configured_recipe, stored_vector
from infra.search_index import async_client, ensure_index, index_name
from projectors.base import Projector
from projectors.postgres.ids import object_id


def _ns(moment: Any) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def embed(doc: dict[str, Any], event: ImageEmbedded, recipe: Recipe) -> bool:
    """Copy the event's vector into `doc` when it is `recipe`'s (another recipe's event is not this index's:
    False, `doc` unchanged); an image with nothing to embed keeps no vector."""
    if event.embedding_version != recipe.version:
        return False
    vector = stored_vector(event.prompt_vector, event.image_vector, recipe.image_dims)
    if vector is not None and len(vector) != recipe.dims:
        return False  # a recipe's version with another width: never written into a mapping it does not fit
    doc["embedding_version"] = event.embedding_version
    if vector is None:
        doc.pop("embedding", None)
    else:
        doc["embedding"] = vector
    return True


class ImageSearchProjector(Projector):
    name = "search_images"
    tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, url: str, prefix: str, recipe: Recipe | None = None) -> None:
        self.url, self.prefix = url, prefix
        self._fixed = recipe  # None: the configured one (infra/embeddings.configured_recipe), read on first use
        self._recipe = recipe
        self._client: Any = None
        self._ready: set[str] = set()

    @property
    def recipe(self) -> Recipe:
        """The recipe whose vectors the index holds (its mapping's width)."""
        if self._recipe is None:
            self._recipe = self._fixed or configured_recipe()
        return self._recipe

    def ddl(self) -> Sequence[str]:
        return []  # the index is made on first use (ensure_index)

    @property
    def client(self) -> Any:
        """The cluster's client (made on first use, by `index`)."""
        assert self._client is not None, "call index() first"
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client, self._ready = None, set()

    async def connected(self) -> Any:
        """The cluster's client, made when missing (`close` drops it)."""
        if self._client is None:
            self._client = async_client(self.url)
        return self._client

    async def index(self, s: str) -> str:
        """The index of read-model schema `s`, made when missing."""
        return await self._index(s)

    async def _index(self, s: str) -> str:
        await self.connected()
        name = index_name(self.prefix, s)
        if name not in self._ready:
            await ensure_index(self._client, name, self.recipe)  # IndexShapeError: another recipe's width
            self._ready.add(name)
        return name

    async def _write(self, index: str, number: int, seq: int, doc: dict[str, Any]) -> None:
        with contextlib.suppress(ConflictError):  # the index holds this event or a later one: a replay
            await self._client.index(index=index, id=str(number), document=doc, version=seq,
                                     version_type="external")

    async def _change(self, index: str, number: int, seq: int, change: Callable[[dict[str, Any]], Any]) -> None:
        try:
            found = await self._client.get(index=index, id=str(number), version=True)
        except NotFoundError:
            return  # a like of an image deleted meanwhile, or a change replayed after the delete
        if int(found["_version"]) >= seq:
            return
        doc = dict(found["_source"])
        if change(doc) is False:
            return  # nothing of this index's changed
        await self._write(index, number, seq, doc)

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if not isinstance(event, ImageUploaded | ImageChanged | ImageEmbedded | ImageDeleted | ImageLiked
                          | ImageUnliked):
            return
        index = await self._index(s)
        if isinstance(event, ImageUploaded):
            await self._write(index, object_id(event), seq, {
                "id": object_id(event), "user_id": event.user_id, "public": event.public,
                "tag_ids": list(event.tag_ids), "likes": 0, "created_ns": _ns(event.timestamp),
                "name_raw": event.name, "prompt_raw": event.prompt, "prompt": event.prompt,
                "embedding_version": 0})
        elif isinstance(event, ImageChanged):
            def changed(doc: dict[str, Any], e: ImageChanged = event) -> None:
                if e.name is not None:
                    doc["name_raw"] = e.name
                if e.tag_ids is not None:
                    doc["tag_ids"] = list(e.tag_ids)
                if e.public is not None:
                    doc["public"] = e.public
            await self._change(index, object_id(event), seq, changed)
        elif isinstance(event, ImageEmbedded):
            def embedded(doc: dict[str, Any], e: ImageEmbedded = event) -> bool:
                return embed(doc, e, self.recipe)
            await self._change(index, object_id(event), seq, embedded)
        elif isinstance(event, ImageDeleted):
            with contextlib.suppress(ConflictError, NotFoundError):
                await self._client.delete(index=index, id=str(object_id(event)), version=seq,
                                          version_type="external")
        else:
            step = 1 if isinstance(event, ImageLiked) else -1

            def liked(doc: dict[str, Any]) -> None:
                doc["likes"] = max(0, int(doc.get("likes", 0)) + step)
            await self._change(index, event.image_id, seq, liked)
