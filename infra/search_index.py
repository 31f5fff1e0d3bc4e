"""The Elasticsearch image index that the search projector writes (projectors/search/images.py) and the
Elasticsearch adapter reads (query/search/elasticsearch.py): its name, its mapping, and the client.

A document per image, id = the image id, written with `version_type=external` and version = the stream
sequence of the last event applied to it, so a replayed or duplicated event is refused by the index (409) and
changes nothing. `created_ns` is `created_at` in nanoseconds (a long: exact microseconds, which ES dates do not
keep), used for date filters, date order and `search_after` keys. `name_raw`/`prompt_raw` are lower-cased
keywords for `q` (a substring, ignoring case: the same rule as the PostgreSQL lists); `prompt` is also analysed
text. `embedding` is the image's stored vector (infra/embeddings.py), ranked by `max_inner_product`, which is
the documented combined score for a weighted query vector.

The embedding's width is the configured recipe's (`Recipe.dims`: 448 for the pixel descriptor, 384 + CLIP's
projection_dim with AIDRAW_CLIP_MODEL_PATH), fixed when the index is made, and the recipe is named in the
mapping's `_meta`. An index of another width cannot take the recipe's vectors: `check_shape` refuses it, and
`aidraw rebuild search_images` builds one of the new shape and swaps it in (docs/search.md "CLIP").
"""

from __future__ import annotations

from typing import Any

from infra.embeddings import Recipe

REBUILD_COMMAND = "aidraw rebuild search_images"


class IndexShapeError(RuntimeError):
    """The index's embedding width is not the configured recipe's: only a rebuild makes one that fits."""


_PROPERTIES: dict[str, Any] = {
    "id": {"type": "long"},
    "user_id": {"type": "long"},
    "public": {"type": "boolean"},
    "tag_ids": {"type": "long"},
    "likes": {"type": "integer"},
    "created_ns": {"type": "long"},
    "name_raw": {"type": "keyword", "normalizer": "lower"},
    "prompt_raw": {"type": "keyword", "normalizer": "lower", "ignore_above": 8191},
    "prompt": {"type": "text"},
    "embedding_version": {"type": "integer"},
}


def mapping(recipe: Recipe) -> dict[str, Any]:
    """The image index's mapping for embeddings of `recipe`."""
    return {
        "dynamic": "strict",
        "_meta": {"embedding_version": recipe.version, "embedding_recipe": recipe.describe()},
        "properties": {**_PROPERTIES,
                       "embedding": {"type": "dense_vector", "dims": recipe.dims, "index": True,
                                     "similarity": "max_inner_product"}},
    }


SETTINGS: dict[str, Any] = {
    "analysis": {"normalizer": {"lower": {"type": "custom", "filter": ["lowercase"]}}},
    "max_result_window": 100_000,
}


def index_name(prefix: str, schema: str = "rm") -> str:
    """One index per deployment (the subject prefix tells them apart) and read-model schema (a rebuild's own)."""
    return f"{prefix.lower()}-images-{schema.replace('_', '-')}"


def async_client(url: str) -> Any:
    """The official client over httpx (the venv has no aiohttp)."""
    from elastic_transport import HttpxAsyncHttpNode
    from elasticsearch import AsyncElasticsearch

    return AsyncElasticsearch(url, node_class=HttpxAsyncHttpNode, request_timeout=10)


def embedding_dims(found: dict[str, Any]) -> dict[str, int | None]:
    """The embedding width of each concrete index in a get-mapping answer (`{index: {"mappings": ...}}`; an
    alias answers with the indexes behind it); None where the mapping has no embedding field."""
    widths: dict[str, int | None] = {}
    for index, body in found.items():
        field = body.get("mappings", {}).get("properties", {}).get("embedding", {})
        widths[index] = int(field["dims"]) if "dims" in field else None
    return widths


def check_shape(name: str, found: dict[str, Any], recipe: Recipe) -> None:
    """Refuse (IndexShapeError) an index `name` whose embeddings are not `recipe`'s width; `found` is its
    get-mapping answer."""
    for index, dims in sorted(embedding_dims(found).items()):
        if dims != recipe.dims:
            behind = "" if index == name else f" ({index} behind the alias)"
            held = "no embedding field" if dims is None else f"embeddings of {dims} floats"
            raise IndexShapeError(
                f"the search index {name}{behind} holds {held}, the configured recipe"
                f" ({recipe.describe()}) makes {recipe.dims}: run `{REBUILD_COMMAND}` to build an index of the"
                " new shape and swap it in (or configure the recipe the index was built with: AIDRAW_CLIP_MODEL_PATH)")


async def ensure_index(client: Any, name: str, recipe: Recipe) -> None:
    """Make the index `name` for `recipe` when missing; refuse one of another embedding width."""
    if not await client.indices.exists(index=name):
        await client.indices.create(index=name, mappings=mapping(recipe), settings=SETTINGS)
        return
    check_shape(name, dict(await client.indices.get_mapping(index=name)), recipe)


# The search projection's checkpoints (projectors/search/sink.py): one document per projection, id = its name,
# version = its position (external versions: the index never lets a checkpoint go backwards).
CHECKPOINT_MAPPING: dict[str, Any] = {"dynamic": "strict", "properties": {"position": {"type": "long"}}}


def checkpoint_index_name(prefix: str) -> str:
    return f"{prefix.lower()}-checkpoints"


async def ensure_checkpoint_index(client: Any, name: str) -> None:
    if not await client.indices.exists(index=name):
        await client.indices.create(index=name, mappings=CHECKPOINT_MAPPING)
