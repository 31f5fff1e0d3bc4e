"""`similar=` at scale: HNSW recall@10 against exact search, p50/p99 of the ranked list through the search
adapter beside the same query as raw SQL, and what the index costs to build and keep. Prints figures, asserts
nothing. Its own PostgreSQL (pgvector 0.8) in a temporary folder.

    .venv/bin/python -m bench.similar_scale [--images 100000] [--prompts 2000] [--pictures 300] [--queries 100]

Vectors are made by the real embedding code, not drawn at random: `--prompts` distinct prompts (8-20 words of
the gallery benchmark's SD vocabulary, Zipf-drawn) through the packaged sentence model, and `--pictures`
pictures drawn in the labelled themes (tests/themes.py) through the upload path's pixel descriptor; each image
is a distinct (prompt, picture) pair, stored as infra/embeddings.stored_vector. Encoding a million distinct
prompts takes hours on two shared cores, hence the pairing: it reuses real prompt and pixel vectors, so the set
is more clustered than a real gallery's (many images share a prompt part), which is the harder case for HNSW.
Rows are written straight into rm.images (the read model's own DDL); the HNSW index is built after the load.

"Through the adapter" is query/search/postgres.py's page (list engine + query/ranked.py: filters, visibility,
total, the nearest 1,000 re-sorted, page 1 of 20), i.e. the API's work without HTTP and JSON. Raw SQL is
`SELECT id ... WHERE filter ORDER BY embedding <#> q LIMIT 20` with the same settings.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from starlette.datastructures import QueryParams

from aidraw.services import PostgresServer
from bench.gallery import WORDS, Zipf
from infra.actor import Actor
from infra.embeddings import PromptEncoder, stored_vector, vector_text
from infra.media import image_descriptor, inspect_upload
from projectors.postgres.image_indexes import IMAGE_INDEXES
from projectors.postgres.images import ImagesProjector
from projectors.postgres.tags import TagsProjector
from query.collections import IMAGES
from query.db import make_pool
from query.listing import parse_list
from query.recommend import similar_to
from query.search.postgres import PostgresImageSearch
from tests.themes import THEMES, draw

START = datetime(2023, 1, 1, tzinfo=UTC)


def make_vectors(prompts: int, pictures: int, rng: random.Random) -> tuple[list[list[float]], list[list[float]],
                                                                             float]:
    word = Zipf(len(WORDS), 0.9, rng)
    texts = list(dict.fromkeys(" ".join(WORDS[word()] for _ in range(rng.randint(8, 20)))
                               for _ in range(prompts * 2)))[:prompts]
    started = time.perf_counter()
    encoder = PromptEncoder()
    prompt_vectors: list[list[float]] = []
    for n in range(0, len(texts), 128):
        prompt_vectors += [v for v in encoder.encode(texts[n:n + 128]) if v is not None]
    encode_s = time.perf_counter() - started
    themes = list(THEMES)
    image_vectors = [image_descriptor(inspect_upload(draw(themes[n % len(themes)], n), max_bytes=1 << 24,
                                                     max_pixels=1 << 24)) for n in range(pictures)]
    return prompt_vectors, image_vectors, encode_s


def load(url: str, images: int, prompts: list[list[float]], pictures: list[list[float]],
         rng: random.Random) -> tuple[float, dict[str, Any]]:
    users, tags = max(200, images // 50), 200
    owner, tag = Zipf(users, 1.1, rng), Zipf(tags, 1.0, rng)
    pairs = rng.sample(range(len(prompts) * len(pictures)), images)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX rm.images_embedding")
        conn.execute("ALTER TABLE rm.images DISABLE TRIGGER USER")
        with conn.cursor().copy("COPY rm.images (id, user_id, name, prompt, width, height, blob_key, content_type,"
                                " public, tag_ids, created_at, updated_at, version, embedding, embedding_version)"
                                " FROM STDIN") as copy:
            for n, pair in enumerate(pairs, 1):
                vector = stored_vector(prompts[pair // len(pictures)], pictures[pair % len(pictures)])
                assert vector is not None
                at = START + timedelta(days=3 * 365 * rng.random())
                tag_ids = "{" + ",".join(str(tag() + 1) for _ in range(rng.choice([0, 1, 1, 2, 3]))) + "}"
                copy.write_row((n, owner() + 1, "", "", 512, 512, "k", "image/png", rng.random() < 0.9, tag_ids,
                                at, at, 1, vector_text(vector), 1))
        conn.execute("ALTER TABLE rm.images ENABLE TRIGGER USER")
        # The per-day counters (totals) from the rows, as the read model's DDL does for rows that predate them.
        conn.execute(next(s for s in IMAGE_INDEXES if s.startswith("INSERT INTO {s}.image_counts")).replace(
            "{s}", "rm"))
        conn.execute("ANALYZE rm.images")
        load_s = time.perf_counter() - started
        conn.execute("SET maintenance_work_mem = '2GB'")
        started = time.perf_counter()
        conn.execute("CREATE INDEX images_embedding ON rm.images USING hnsw (embedding vector_ip_ops)"
                     " WITH (m = 16, ef_construction = 64)")
        build_s = time.perf_counter() - started
        row = conn.execute("SELECT pg_relation_size('rm.images_embedding'), pg_total_relation_size('rm.images')"
                           ).fetchone()
        assert row is not None
        # A user with about 0.1% of the images, and a tag on about 0.1%: the selective filters.
        picked: dict[str, Any] = {"build_s": build_s, "index_bytes": row[0], "table_bytes": row[1]}
        for column, name in (("user_id", "user"), ("unnest(tag_ids)", "tag")):
            found = conn.execute(f"SELECT v, n FROM (SELECT {column} AS v, count(*) AS n FROM rm.images GROUP BY 1)"
                                 " c ORDER BY abs(n - %s), v LIMIT 1", (max(5, images // 1000),)).fetchone()
            assert found is not None
            picked[name] = (int(found[0]), int(found[1]))
    return load_s, picked


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, picked: dict[str, Any], queries: int, rng: random.Random, images: int) -> None:
    pool = make_pool(url, max_size=2)
    await pool.open(wait=True)
    search = PostgresImageSearch(pool, nearest=1000)
    admin = Actor(1, "admin")
    filters = {"none": ("", "true"), f"user ({picked['user'][1]} images)": (f"user={picked['user'][0]}",
                                                                             f"user_id = {picked['user'][0]}"),
               f"tag ({picked['tag'][1]} images)": (f"tag={picked['tag'][0]}",
                                                   f"tag_ids && ARRAY[{picked['tag'][0]}]::bigint[]")}
    origins = [rng.randint(1, images) for _ in range(queries)]
    async with await psycopg.AsyncConnection.connect(url) as conn:  # raw SQL: its own plain connection
        await conn.execute("SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = 100")
        print(f"{'filter':<26} {'recall@10':>9} {'adapter p50':>12} {'p99':>8} {'raw SQL p50':>12} {'p99':>8}  ms")
        for label, (params, where) in filters.items():
            recall, adapter_ms, raw_ms = [], [], []
            for origin in origins:
                ranking = await similar_to(pool, admin, origin, 0.5)
                assert ranking.vector is not None
                q = vector_text(ranking.vector)
                exact = [r[0] for r in await (await conn.execute(
                    f"SELECT id FROM rm.images WHERE {where} AND id <> %s ORDER BY (embedding <#> %s::vector) + 0"
                    " LIMIT 10", (origin, q))).fetchall()]
                started = time.perf_counter()
                approx = [r[0] for r in await (await conn.execute(
                    f"SELECT id FROM rm.images WHERE {where} AND id <> %s ORDER BY embedding <#> %s::vector"
                    " LIMIT 20", (origin, q))).fetchall()]
                raw_ms.append((time.perf_counter() - started) * 1000)
                recall.append(len(set(exact) & set(approx[:10])) / max(1, len(exact)))
                query = parse_list(QueryParams(params), IMAGES)
                started = time.perf_counter()
                await search.page(query, admin, ranking)
                adapter_ms.append((time.perf_counter() - started) * 1000)
            print(f"{label:<26} {statistics.mean(recall):>9.3f} {percentile(adapter_ms, .5):>12.1f}"
                  f" {percentile(adapter_ms, .99):>8.1f} {percentile(raw_ms, .5):>12.1f}"
                  f" {percentile(raw_ms, .99):>8.1f}")
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--pictures", type=int, default=300)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(3)
    prompts, pictures, encode_s = make_vectors(args.prompts, args.pictures, rng)
    print(f"{len(prompts)} prompts encoded in {encode_s:.0f} s, {len(pictures)} pictures described")
    with tempfile.TemporaryDirectory() as folder:
        server = PostgresServer(Path(folder) / "pg").start()
        try:
            url = server.create_database("similar_bench")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE SCHEMA rm")
                for projector in (TagsProjector(), ImagesProjector()):
                    for statement in projector.ddl():
                        conn.execute(projector.sql(statement, "rm"))  # type: ignore[arg-type]
            load_s, picked = load(url, args.images, prompts, pictures, rng)
            print(f"{args.images} images loaded in {load_s:.0f} s; HNSW (m 16, ef_construction 64) built in"
                  f" {picked['build_s']:.0f} s, {picked['index_bytes'] / 2**20:.0f} MiB"
                  f" (table with its other indexes: {picked['table_bytes'] / 2**20:.0f} MiB)")
            asyncio.run(measure(url, picked, args.queries, rng, args.images))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
