"""The data of bench/similar_scale.py: image vectors made by the real embedding code, written into rm.images, and
the HNSW index built after the load (its build time and size measured).

- The prompt part: the first `prompts` prompts of bench/prompt_corpus.py (distinct compositional prompts)
  through the packaged sentence model, from its on-disk cache. With as many prompts as images every image has
  its own; with fewer (encoding a million prompts takes hours on shared cores) image n uses prompt n mod
  `prompts`, so a prompt part repeats images // prompts times, as it does between the variations of one
  prompt in a real gallery (more clustered than a gallery of all-distinct prompts: the harder case for HNSW).
- The image part: the upload path's pixel descriptor (infra/media.py) of PICTURES small generated pictures (a
  background and a few shapes in random colours and places), cached beside the prompt vectors; the images that
  share a prompt get different pictures, so every stored vector is distinct.
Rows are written straight into the read model's own table (the DDL of `aidraw migrate`), not through the log:
the benchmark measures reading, and the projection's speed is bench/project.py's.
"""

from __future__ import annotations

import io
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from PIL import Image, ImageDraw

from bench import prompt_corpus
from bench.gallery import BLOB_KEY, Zipf
from infra.embeddings import IMAGE_DIMS, vector_text
from infra.media import image_descriptor, inspect_upload
from projectors.postgres.image_indexes import IMAGE_INDEXES

START = datetime(2023, 1, 1, tzinfo=UTC)
PICTURES = 2000
TAGS = 200
HNSW = ("CREATE INDEX images_embedding ON rm.images USING hnsw (embedding vector_ip_ops)"
        " WITH (m = 16, ef_construction = 64)")


def picture(seed: int, size: int = 96) -> bytes:
    rng = random.Random(seed)

    def colour() -> tuple[int, int, int]:
        return rng.randrange(256), rng.randrange(256), rng.randrange(256)

    image = Image.new("RGB", (size, size), colour())
    pen = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 5)):
        x, y = rng.randrange(size), rng.randrange(size)
        w, h = rng.randint(8, size // 2), rng.randint(8, size // 2)
        shape = rng.choice((pen.ellipse, pen.rectangle))
        shape([x - w, y - h, x + w, y + h], fill=colour())
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def picture_vectors(count: int = PICTURES) -> np.ndarray:
    path = prompt_corpus.CACHE.parent / f"pictures-{count}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.array([image_descriptor(inspect_upload(picture(n), max_bytes=1 << 24, max_pixels=1 << 24))
                        for n in range(count)], dtype=np.float32)
    assert vectors.shape == (count, IMAGE_DIMS)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def load(url: str, images: int, distinct_prompts: int, rng: random.Random) -> dict[str, Any]:
    """Write `images` rows (90% public, Zipf owners and tags, three years of dates) and the counters."""
    count = min(images, distinct_prompts)
    prompts = prompt_corpus.cached(count)
    texts = prompt_corpus.prompts(count)
    pictures = picture_vectors()
    first_picture = [rng.randrange(len(pictures)) for _ in range(count)]
    assert images <= count * len(pictures), "not enough distinct (prompt, picture) pairs"
    users = max(200, images // 50)
    owner, tag = Zipf(users, 1.1, rng), Zipf(TAGS, 1.0, rng)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS rm.images_embedding")
        with conn.cursor().copy("COPY rm.tags (id, name, user_id, created_at, updated_at, version) FROM STDIN") as copy:
            for n in range(1, TAGS + 1):
                copy.write_row((n, f"tag{n}", 1, START, START, 1))
        conn.execute("ALTER TABLE rm.images DISABLE TRIGGER USER")
        with conn.cursor().copy("COPY rm.images (id, user_id, name, prompt, width, height, blob_key, content_type,"
                                " public, tag_ids, created_at, updated_at, version, embedding, embedding_version)"
                                " FROM STDIN") as copy:
            for n in range(images):
                p = n % count
                vector = [*prompts[p].tolist(), *pictures[(first_picture[p] + n // count) % len(pictures)].tolist()]
                at = START + timedelta(days=3 * 365 * rng.random())
                tag_ids = "{" + ",".join(str(tag() + 1) for _ in range(rng.choice([0, 1, 1, 2, 3]))) + "}"
                copy.write_row((n + 1, owner() + 1, "", texts[p], 512, 512, BLOB_KEY, "image/png", rng.random() < 0.9,
                                tag_ids, at, at, 1, vector_text(vector), 1))
        conn.execute("ALTER TABLE rm.images ENABLE TRIGGER USER")
        # The per-day counters (totals) from the rows, as the read model's DDL does for rows that predate them.
        conn.execute(next(s for s in IMAGE_INDEXES if s.startswith("INSERT INTO {s}.image_counts")).replace(
            "{s}", "rm"))
        conn.execute("VACUUM ANALYZE rm.images")
        # A user with about 0.1% of the images, and a tag on about 0.1%: the selective filters.
        picked: dict[str, Any] = {"images": images, "prompts": count, "load_s": time.perf_counter() - started}
        for column, name in (("user_id", "user"), ("unnest(tag_ids)", "tag")):
            found = conn.execute(f"SELECT v, n FROM (SELECT {column} AS v, count(*) AS n FROM rm.images GROUP BY 1)"
                                 " c ORDER BY abs(n - %s), v LIMIT 1", (max(5, images // 1000),)).fetchone()
            assert found is not None
            picked[name] = (int(found[0]), int(found[1]))
    return picked


def build_index(url: str, memory: str) -> dict[str, Any]:
    """Build the read model's HNSW index (its own DDL's parameters) and say what it cost."""
    notices: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        conn.execute("DROP INDEX IF EXISTS rm.images_embedding")
        conn.execute(f"SET maintenance_work_mem = '{memory}'")
        workers = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()
        started = time.perf_counter()
        conn.execute(HNSW)
        build_s = time.perf_counter() - started
        row = conn.execute("SELECT pg_relation_size('rm.images_embedding'), pg_total_relation_size('rm.images')"
                           ).fetchone()
        assert row is not None and workers is not None
    return {"build_s": build_s, "index_bytes": row[0], "table_bytes": row[1], "memory": memory,
            "workers": workers[0], "notices": notices}


def saved(folder: Path) -> Path:
    return folder / "loaded.json"
