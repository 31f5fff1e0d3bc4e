"""`aidraw rebuild` for the search read model (docs/search.md "Switching, rebuilding, checking").

- PostgreSQL: the vectors are columns of rm.images, so `aidraw rebuild images` rebuilds them (its HNSW index
  built in bulk after the replay, projectors/rebuild.py); `coverage` is the check printed after it: how many
  images carry the current embedding recipe, an older one, or none yet (the embedding worker's work left).
- Elasticsearch: `aidraw rebuild search_images` builds a new index and swaps the alias
  (projectors/search/rebuild.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import psycopg

from infra.embeddings import recipe_of
from infra.settings import Settings
from projectors.loop import Target


def coverage(database_url: str, clip_model_path: str = "") -> str:
    """One line: the images per embedding recipe in the live read model, against the configured recipe
    (Settings.clip_model_path); and whether the live table is of that recipe's shape."""
    recipe = recipe_of(clip_model_path)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT embedding_version, count(*), count(embedding) FROM rm.images GROUP BY 1"
                            ).fetchall()
        width = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'rm.images'::regclass"
                             " AND attname = 'embedding'").fetchone()
    current = sum(n for version, n, _ in rows if version == recipe.version)
    older = sum(n for version, n, _ in rows if version not in (0, recipe.version))
    none = sum(n for version, n, _ in rows if version == 0)
    empty = sum(n - with_vector for version, n, with_vector in rows if version > 0)
    line = (f"embeddings: {current:,} images at version {recipe.version} (the current recipe: {recipe.describe()}),"
            f" {older:,} at an older one, {none:,} not embedded yet")
    if empty:
        line += f"; {empty:,} have nothing to embed (no prompt, no descriptor)"
    if width and width[0] != recipe.dims:
        line += (f"; the live read model holds {width[0]} floats per image, the configured recipe {recipe.dims}:"
                 " rebuild it (aidraw rebuild images) to switch")
    elif older or none:
        line += "; the embedding worker (aidraw projector) is still recording: rebuild again when it is done"
    return line + "."


def rebuild_index(settings: Settings, database_url: str, nats_url: str, end: int,
                  progress: Callable[[int], None]) -> int:
    from projectors.search.rebuild import rebuild_index as rebuild

    if settings.search_backend != "elasticsearch":
        print("error: search_images is the Elasticsearch index; this deployment searches with PostgreSQL"
              " (AIDRAW_SEARCH): rebuild `images` instead.", file=sys.stderr)
        return 2
    recipe = recipe_of(settings.clip_model_path)
    report = asyncio.run(rebuild(settings.elasticsearch_url, settings.subject_prefix,
                                 Target(nats_url, settings.stream_name, database_url), end, progress, recipe=recipe))
    if report.reshaped:
        widths = ", ".join(f"{index}: {dims}" for index, dims in sorted(report.reshaped.items()))
        verdict = (f"in its new shape (embeddings of {recipe.dims} floats, the configured recipe's: "
                   f"{recipe.describe()}; the live index held another width, {widths}: not compared)")
    elif not report.compared:
        verdict = "not compared (the live index was missing or behind)"
    elif report.same_documents:
        verdict = "the same documents as the live index"
    else:
        verdict = (f"DIFFERED from the live index ({report.live_documents:,} live documents); the rebuilt one, made"
                   " from the log, is now live")
    print(f"search_images: rebuilt to sequence {report.position} into {report.index} ({report.rebuilt_documents:,}"
          f" documents), {verdict}; the alias now points to it.")
    return 0
