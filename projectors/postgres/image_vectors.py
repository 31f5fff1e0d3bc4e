"""The images read model's embedding columns (docs/search.md): pgvector, one HNSW index, and the copy of each
ImageEmbedded event's floats.

`embedding` is infra/embeddings.stored_vector of the event's two parts (a missing part as zeros; NULL when the
image has neither), `embedding_version` the recipe that made it (0: none yet; the embedding worker's work list).
The index orders by inner product (`<#>`), which is the combined score of infra/embeddings.py for a query
vector weighted per part.
"""

from __future__ import annotations

from typing import Any

from events.images import ImageEmbedded
from infra import locks
from infra.embeddings import DIMS, stored_vector, vector_text
from projectors.postgres.ids import object_id

# Before the images table (its column has the extension's type); CREATE EXTENSION is not safe twice at once.
VECTOR_EXTENSION: list[str] = [
    f"SELECT pg_advisory_xact_lock({locks.EXTENSIONS_SETUP})",
    "CREATE EXTENSION IF NOT EXISTS vector",
]
# The columns, part of rm.images' CREATE TABLE (the migration step makes them; a new shape is a rebuild).
VECTOR_COLUMNS = f"embedding vector({DIMS}), embedding_version int NOT NULL DEFAULT 0"
VECTOR_COLUMN_NAMES = ("embedding", "embedding_version")  # written by ImageEmbedded, not by the upload
# m and ef_construction are pgvector's defaults; bench/similar_scale.py measures recall and build cost with them.
# Deferred (projectors/base.py): a rebuild builds it from the replayed rows, in bulk, before the swap.
VECTOR_INDEX: list[str] = [
    "CREATE INDEX IF NOT EXISTS images_embedding ON {s}.images USING hnsw (embedding vector_ip_ops)"
    " WITH (m = 16, ef_construction = 64)",
]
VECTOR_DDL: list[str] = [
    # The embedding worker's work list: images whose embedding is older than the current recipe, oldest first.
    "CREATE INDEX IF NOT EXISTS images_embedding_version ON {s}.images (embedding_version, created_at)",
]


async def image_embedded(cur: Any, s: str, e: ImageEmbedded) -> None:
    vector = stored_vector(e.prompt_vector, e.image_vector)
    await cur.execute(
        f"UPDATE {s}.images SET embedding = %s::vector, embedding_version = %s WHERE id = %s",
        (None if vector is None else vector_text(vector), e.embedding_version, object_id(e)))
