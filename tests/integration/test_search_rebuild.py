"""The search read model rebuilt the `aidraw rebuild` way (docs/search.md "Switching, rebuilding, checking"): the
PostgreSQL vectors are rm.images' columns, rebuilt from the ImageEmbedded events beside the live copy, compared,
swapped in with their HNSW index (built in bulk after the replay), and checked for the embedding recipe."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from command.app import CommandApp
from command.embedder import embed_images
from infra.embeddings import EMBEDDING_VERSION, PIXELS, PromptEncoder
from infra.settings import Settings
from tests.catalog_accounts import People, client_of
from tests.image_files import upload
from tests.image_support import eventually, log_end, wait_projected
from tests.integration.test_ops_and_replay import cli
from tests.system import System
from tests.themes import THEMES, draw


@pytest.fixture(scope="module")
def commands(system: System) -> Iterator[CommandApp]:
    app = CommandApp(Settings(stream_name=system.stream, subject_prefix=system.prefix), system.nats_url)
    yield app
    app.close()


def _rows(system: System) -> dict[int, tuple[int, str | None]]:
    with psycopg.connect(system.database_url) as conn:
        return {int(n): (int(v), e) for n, v, e in conn.execute(
            "SELECT id, embedding_version, embedding::text FROM rm.images")}


def _hnsw_is_valid(system: System) -> bool:
    with psycopg.connect(system.database_url) as conn:
        row = conn.execute("SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
                           " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'rm'"
                           " AND c.relname = 'images_embedding'").fetchone()
    return bool(row and row[0])


def test_rebuild_gives_the_same_vectors_swaps_the_index_in_and_reports_the_recipe(
        system: System, people: People, commands: CommandApp) -> None:
    ids = []
    with client_of(system, people.alice) as client:
        for n, prompt in enumerate(THEMES["ocean"][:3]):
            answer = upload(client, draw("ocean", n), fields={"prompt": prompt, "public": "true"})
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
    encoder = PromptEncoder()
    embed_images(commands, encoder, ids[:2])  # the third is left to the worker: not embedded yet
    wait_projected(system, log_end(system))
    before = _rows(system)
    assert [before[n][0] for n in ids] == [EMBEDDING_VERSION, EMBEDDING_VERSION, 0]

    result = cli(system, "rebuild", "images")
    assert result.returncode == 0, result.stderr
    assert "identical to the live copy" in result.stdout
    assert "deferred indexes were built" in result.stdout
    assert (f"2 images at version {EMBEDDING_VERSION} (the current recipe: {PIXELS.describe()}), 0 at an older one,"
            " 1 not embedded yet" in result.stdout) and "still recording" in result.stdout
    assert _rows(system) == before  # the floats copied again, not recomputed
    assert _hnsw_is_valid(system)  # the fresh copy's index, built after the replay, moved in with the table
    with client_of(system, people.alice) as client:
        page = client.get("/api/images", params={"similar": ids[0], "user": people.alice.id}).json()
        assert page["sort_applied"] == "similar" and [i["id"] for i in page["list"]][:1] == [ids[1]]

    # The live projector goes on after the swap: the last embedding lands in the swapped-in table.
    embed_images(commands, encoder, ids[2:])
    assert eventually(lambda: _rows(system)[ids[2]][0] == EMBEDDING_VERSION, timeout=30)
    again = cli(system, "rebuild", "images")
    assert again.returncode == 0, again.stderr
    assert f"3 images at version {EMBEDDING_VERSION}" in again.stdout and "still recording" not in again.stdout


def test_rebuilding_the_elasticsearch_index_without_it_configured_is_a_clear_error(system: System) -> None:
    result = cli(system, "rebuild", "search_images")
    assert result.returncode == 2 and "this deployment searches with PostgreSQL" in result.stderr
