"""The images read model's embedding columns (docs/search.md): pgvector, one HNSW index, and the copy of each
ImageEmbedded event's floats.

`embedding` is infra/embeddings.stored_vector of the event's two parts (a missing part as zeros; NULL when the
image has neither), `embedding_version` the recipe that made it (0: none yet; the embedding worker's work list).
The index orders by inner product (`<#>`), which is the combined score of infra/embeddings.py for a query
vector weighted per part.

The column's width is the configured recipe's (infra/embeddings.Recipe: 384 + the image part's floats), fixed
when the table is made. A read model copies only the ImageEmbedded events of the configured recipe that fit its
column: after a switch of recipe the live table keeps the old recipe's vectors (no query compares two recipes)
until `aidraw rebuild images` swaps in a table of the new shape.
"""

from __future__ import annotations

from typing import Any

from events.images import ImageEmbedded
from infra import locks
from infra.embeddings import Recipe, stored_vector, vector_text
from projectors.postgres.ids import object_id

# Before the images table (its column has the extension's type); CREATE EXTENSION is not safe twice at once.
VECTOR_EXTENSION: list[str] = [
    f"SELECT pg_advisory_xact_lock({locks.EXTENSIONS_SETUP})",
    "CREATE EXTENSION IF NOT EXISTS vector",
]


def vector_columns(recipe: Recipe) -> str:
    """The columns, part of rm.images' CREATE TABLE (the migration step makes them; a new shape is a rebuild)."""
    return f"embedding vector({recipe.dims}), embedding_version int NOT NULL DEFAULT 0"


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


async def column_dims(cur: Any, s: str) -> int:
    """The width of {s}.images.embedding (pgvector keeps it as the column's type modifier)."""
    await cur.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'",
                      (f"{s}.images",))
    row = await cur.fetchone()
    return int(row[0]) if row else -1


async def image_embedded(cur: Any, s: str, e: ImageEmbedded, recipe: Recipe) -> None:
    if e.embedding_version != recipe.version:
        return  # another recipe's (an older one, or a worker configured otherwise): not this read model's
    vector = stored_vector(e.prompt_vector, e.image_vector, recipe.image_dims)
    if vector is not None and len(vector) != await column_dims(cur, s):
        return  # the live table of the recipe before a switch: it keeps its vectors until the rebuild swaps
    await cur.execute(
        f"UPDATE {s}.images SET embedding = %s::vector, embedding_version = %s WHERE id = %s",
        (None if vector is None else vector_text(vector), e.embedding_version, object_id(e)))
