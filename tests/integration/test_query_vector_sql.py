"""infra/embeddings.py `query_vector_sql` (what `similar=` ranks by, computed in the ranking statement) is
`query_vector` in SQL: the same floats but for float4's last bit, whichever parts an image has and whatever the
weight."""

from __future__ import annotations

import json
import random

import psycopg
import pytest

from infra.embeddings import IMAGE_DIMS, PROMPT_DIMS, query_vector, query_vector_sql, vector_text


def _part(rng: random.Random, size: int, present: bool) -> list[float]:
    return [round(rng.uniform(-1, 1), 6) if present else 0.0 for _ in range(size)]


@pytest.mark.parametrize("prompt_weight", [0.5, 0.3, 1.0, 0.0])
def test_the_sql_query_vector_is_the_python_one(database_url: str, prompt_weight: float) -> None:
    rng = random.Random(prompt_weight)
    stored = [[*_part(rng, PROMPT_DIMS, prompt), *_part(rng, IMAGE_DIMS, image)]
              for prompt, image in ((True, True), (True, True), (False, True), (True, False))]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        for vector in stored:
            row = conn.execute(f"SELECT ({query_vector_sql('s.e', prompt_weight)})::text FROM (SELECT %s::vector AS e)"
                               " s", (vector_text(vector),)).fetchone()
            assert row is not None
            got, want = json.loads(row[0]), query_vector(vector, prompt_weight, 1 - prompt_weight)
            assert len(got) == len(want) == PROMPT_DIMS + IMAGE_DIMS
            assert all(abs(g - w) <= 1e-7 * max(1.0, abs(w)) for g, w in zip(got, want, strict=True))
            assert [g == 0 for g in got] == [w == 0 for w in want]  # a missing or weightless part stays zeros
        assert conn.execute(f"SELECT {query_vector_sql('s.e', prompt_weight)} FROM (SELECT NULL::vector AS e) s"
                            ).fetchone() == (None,)  # an image not embedded yet
