"""`similar=` at scale: HNSW recall@10 against exact search, and p50/p99 of `similar=` through the HTTP API, through
the search adapter alone and as raw SQL, interleaved in one run; the index's build time and size. Prints figures,
asserts nothing. Its own PostgreSQL (pgvector 0.8), NATS and `aidraw api` in --dir.

    nice -n 19 .venv/bin/python -m bench.prompt_corpus --count N      # once: the real prompt vectors, cached
    nice -n 19 .venv/bin/python -m bench.similar_scale --images N --load-only [--dir /tmp/aidraw-bench-similar]
    .venv/bin/python -m bench.similar_scale --reuse [--queries 200]     # query what the load made

The data is bench/similar_load.py's (real prompt vectors, one distinct prompt per image; real pixel
descriptors). Each query is one public image (the anonymous caller's `similar=ID`) with a filter:
- API: GET /api/images?similar=ID[&filter], page 1 of 20, anonymous (HTTP, JSON, the rows, the ranking's query
  vector read from the read model: everything a client waits for);
- adapter: query/search/postgres.py's page for the same ranking (the image's vector, filters, visibility, exact
  total, the ranked ids; no HTTP, no rows);
- raw SQL: `SELECT id FROM rm.images WHERE public AND filter AND id <> ID ORDER BY embedding <#> q LIMIT 20`
  with the same settings as the adapter (`hnsw.iterative_scan = relaxed_order`, query/ranked.py's ef_search).
The three run in a random order per query (none always right after another). Recall@10 compares the first 10
of the raw SQL query and of the adapter's page with an exact scan of the same filter, in a second pass (no
exact scan of the whole table runs between the timed queries).
`--shared-buffers` starts PostgreSQL with a larger shared_buffers and prewarms the index into it (pg_prewarm): a
deployment sized for its gallery (docs/search.md "Sizing"); the default is the embedded server's 256MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
from starlette.datastructures import QueryParams

from aidraw.migrate import migrate_sync
from aidraw.services import NatsServer, PostgresServer, free_port
from bench import prompt_corpus, similar_load
from bench.list_queries import percentile
from bench.lists import start_role, wait_healthy
from infra.actor import Actor
from infra.embeddings import query_vector_sql
from query.collections import IMAGES
from query.db import make_pool
from query.listing import parse_list
from query.ranked import EF_SEARCH, Ranking
from query.search.postgres import PostgresImageSearch

WARMUP = 5


def filters(picked: dict[str, Any]) -> dict[str, tuple[list[tuple[str, str]], str]]:
    user, tag = picked["user"], picked["tag"]
    return {"none": ([], "true"),
            f"user ({user[1]:,} images)": ([("user", str(user[0]))], f"user_id = {user[0]}"),
            f"tag ({tag[1]:,} images)": ([("tag", f"tag{tag[0]}")], f"tag_ids && ARRAY[{tag[0]}]::bigint[]")}


async def measure(url: str, database_url: str, picked: dict[str, Any], queries: int, rng: random.Random) -> str:
    pool = make_pool(database_url, max_size=2)
    await pool.open(wait=True)
    search = PostgresImageSearch(pool, nearest=1000)
    anonymous = Actor()
    client = httpx.AsyncClient(base_url=url, timeout=60, headers={"User-Agent": "aidraw-bench-similar"})
    lines = ["| filter | recall@10 SQL / adapter | API p50 / p99 ms | adapter p50 / p99 ms | raw SQL p50 / p99 ms |",
             "|---|---:|---:|---:|---:|"]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as sql:
        await sql.execute(f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {EF_SEARCH}")
        publics = [r[0] for r in await (await sql.execute(
            "SELECT id FROM rm.images WHERE public ORDER BY random() LIMIT %s", (WARMUP + queries,))).fetchall()]
        for label, (params, where) in filters(picked).items():
            timings: dict[str, list[float]] = {"api": [], "adapter": [], "sql": []}
            approx: dict[int, list[int]] = {}
            adapter_ids: dict[int, list[int]] = {}
            vectors: dict[int, str] = {}
            # First the timings of the three ways (no exact scan in between: its parallel sequential scan of
            # the whole table would sit in the tail of whatever runs next), then the recall.
            for n, origin in enumerate(publics):
                ranking = Ranking.similar(origin, 0.5)  # the adapter reads the image's vector itself
                found = await (await sql.execute(f"SELECT ({query_vector_sql('embedding', 0.5)})::text"
                                                 " FROM rm.images WHERE id = %s", (origin,))).fetchone()
                assert found is not None and found[0] is not None
                q = vectors[origin] = found[0]
                raw = (f"SELECT id FROM rm.images WHERE public AND {where} AND id <> %s ORDER BY embedding <#> %s"
                       "::vector LIMIT 20")
                query = parse_list(QueryParams(params), IMAGES)
                ways = {"api": client.get("/api/images", params=[*params, ("similar", str(origin))]),
                        "adapter": search.page(query, anonymous, ranking),
                        "sql": sql.execute(raw, (origin, q))}  # each starts when awaited
                order = list(ways)
                rng.shuffle(order)
                got: dict[str, Any] = {}
                for key in order:
                    started = time.perf_counter()
                    got[key] = await ways[key]  # type: ignore[misc]
                    if n >= WARMUP:
                        timings[key].append((time.perf_counter() - started) * 1000)
                got["api"].raise_for_status()
                approx[origin] = [r[0] for r in await got["sql"].fetchall()][:10]
                adapter_ids[origin] = got["adapter"].ids[:10]
            recall: list[float] = []
            adapter_recall: list[float] = []
            for origin in publics[WARMUP:]:
                exact = [r[0] for r in await (await sql.execute(
                    f"SELECT id FROM rm.images WHERE public AND {where} AND id <> %s"
                    " ORDER BY (embedding <#> %s::vector) + 0 LIMIT 10", (origin, vectors[origin]))).fetchall()]
                recall.append(len(set(exact) & set(approx[origin])) / max(1, len(exact)))
                adapter_recall.append(len(set(exact) & set(adapter_ids[origin])) / max(1, len(exact)))
            cells = [f"{percentile(timings[k], .5):.1f} / {percentile(timings[k], .99):.1f}"
                     for k in ("api", "adapter", "sql")]
            lines.append(f"| {label} | {sum(recall) / len(recall):.3f} / {sum(adapter_recall) / len(recall):.3f} | "
                         + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    await client.aclose()
    await pool.close()
    return "\n".join(lines)


def prewarm(database_url: str) -> str:
    """Read the HNSW index (and the table's rows) into shared_buffers, as a warmed server would hold them."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        started = time.perf_counter()
        got = [conn.execute("SELECT pg_prewarm(%s)", (name,)).fetchone() for name in ("rm.images_embedding",
                                                                                        "rm.images")]
    pages = sum(int(row[0]) for row in got if row is not None)
    return f"prewarmed {pages * 8 / 1024:,.0f} MiB (index and table) in {time.perf_counter() - started:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--prompts", type=int, default=0, help="distinct prompts (default: all cached, at most"
                        " --images)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--memory", default="3GB", help="maintenance_work_mem for the index build")
    parser.add_argument("--shared-buffers", default="256MB", help="PostgreSQL's shared_buffers (the embedded"
                        " default: 256MB); one that holds the HNSW index is prewarmed into it (pg_prewarm) first")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/aidraw-bench-similar"))
    parser.add_argument("--reuse", action="store_true", help="query what an earlier run loaded")
    parser.add_argument("--load-only", action="store_true", help="load and build the index, then stop (run it"
                        " under nice; then query with --reuse)")
    args = parser.parse_args()
    folder: Path = args.dir
    if not args.reuse and folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder} is not empty: remove it, or pass --reuse")
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(3)
    nats = NatsServer(folder / "nats").start()
    postgres = PostgresServer(folder / "pg", shared_buffers=args.shared_buffers)
    api = None
    try:
        postgres.start()  # inside: a PostgreSQL that cannot start must not leave NATS running
        database_url = postgres.url
        if args.reuse:
            picked = json.loads(similar_load.saved(folder).read_text())
        else:
            migrate_sync(database_url)
            prompts = args.prompts or prompt_corpus.available()
            picked = similar_load.load(database_url, args.images, prompts, rng)
            print(f"{args.images:,} images ({picked['prompts']:,} distinct prompts) loaded in"
                  f" {picked['load_s']:.0f} s", flush=True)
            picked |= similar_load.build_index(database_url, args.memory)
            similar_load.saved(folder).write_text(json.dumps(picked))
        print(f"{picked['images']:,} images; HNSW (m 16, ef_construction 64) built in {picked['build_s']:.0f} s"
              f" with maintenance_work_mem {picked['memory']} and {picked['workers']} parallel workers:"
              f" {picked['index_bytes'] / 2**20:,.0f} MiB (the table with its other indexes:"
              f" {picked['table_bytes'] / 2**20:,.0f} MiB); notices: {picked['notices'] or 'none'}", flush=True)
        if args.load_only:
            return
        port = free_port()
        env = dict(os.environ, AIDRAW_NATS_URL=nats.url, AIDRAW_DATABASE_URL=database_url,
                   AIDRAW_DATA_DIR=str(folder / "var"), AIDRAW_PORT=str(port), AIDRAW_LOG_LEVEL="WARNING")
        url = f"http://127.0.0.1:{port}"
        api = start_role(env, folder, "api")
        wait_healthy(url, api)
        if args.shared_buffers != "256MB":
            print(f"shared_buffers {args.shared_buffers}: {prewarm(database_url)}", flush=True)
        print(f"\n{args.queries} query images per filter (after {WARMUP} warm-up), anonymous caller\n", flush=True)
        table = asyncio.run(measure(url, database_url, picked, args.queries, rng))
        (folder / "table.md").write_text(table + "\n")
    finally:
        if api is not None:
            api.terminate()
            api.wait()
        postgres.stop()
        nats.stop()


if __name__ == "__main__":
    main()
