"""The Elasticsearch image index that the search projector writes (projectors/search/images.py) and the
Elasticsearch adapter reads (query/search/elasticsearch.py): its name, its mapping, and the client.

A document per image, id = the image id, written with `version_type=external` and version = the stream
sequence of the last event applied to it, so a replayed or duplicated event is refused by the index (409) and
changes nothing. `created_ns` is `created_at` in nanoseconds (a long: exact microseconds, which ES dates do not
keep), used for date filters, date order and `search_after` keys. `name_raw`/`prompt_raw` are lower-cased
keywords for `q` (a substring, ignoring case: the same rule as the PostgreSQL lists); `prompt` is also analysed
text. `embedding` is the image's stored vector (infra/embeddings.py), ranked by `max_inner_product`, which is
the documented combined score for a weighted query vector.
"""

from __future__ import annotations

from typing import Any

from infra.embeddings import DIMS

MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
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
        "embedding": {"type": "dense_vector", "dims": DIMS, "index": True, "similarity": "max_inner_product"},
    },
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


async def ensure_index(client: Any, name: str) -> None:
    if not await client.indices.exists(index=name):
        await client.indices.create(index=name, mappings=MAPPING, settings=SETTINGS)


# The search projection's checkpoints (projectors/search/sink.py): one document per projection, id = its name,
# version = its position (external versions: the index never lets a checkpoint go backwards).
CHECKPOINT_MAPPING: dict[str, Any] = {"dynamic": "strict", "properties": {"position": {"type": "long"}}}


def checkpoint_index_name(prefix: str) -> str:
    return f"{prefix.lower()}-checkpoints"


async def ensure_checkpoint_index(client: Any, name: str) -> None:
    if not await client.indices.exists(index=name):
        await client.indices.create(index=name, mappings=CHECKPOINT_MAPPING)
