"""CLIP as the image part of the embeddings (docs/search.md "CLIP"): a tiny random CLIP saved locally is named by
AIDRAW_CLIP_MODEL_PATH; the real worker reads each image's file from the blob store, records CLIP's vector in
ImageEmbedded, the projector copies it into a column of the recipe's width, and `similar=` ranks by it. Then the
switch back to the pixel recipe: the live table keeps CLIP's vectors until `aidraw rebuild images` swaps in a
table of the other shape, and the live projector goes on over it."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from aidraw.search_rebuild import coverage
from command.app import CommandApp
from command.embedder import embed_images
from command.images import Image
from infra.clip import ClipImageEncoder, clip_recipe
from infra.embeddings import PIXELS, PROMPT_DIMS, PromptEncoder, Recipe, query_vector
from infra.settings import Settings, SettingsError
from tests.catalog_accounts import People, client_of, make_people
from tests.conftest import _counter
from tests.image_files import upload
from tests.image_support import eventually, log_end, wait_projected
from tests.system import System
from tests.themes import THEMES, draw
from tests.tiny_clip import PROJECTION_DIM, save_tiny_clip


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def system(nats_server, postgres_server, servers_dir: Path, clip_path: Path) -> Iterator[System]:  # type: ignore[no-untyped-def]
    number = next(_counter)
    stream = f"S{os.getpid()}_{number}"
    url = postgres_server.create_database(f"sys_{os.getpid()}_{number}")
    with pytest.MonkeyPatch.context() as env:  # the migration runs here, with the roles' settings
        env.setenv("AIDRAW_CLIP_MODEL_PATH", str(clip_path))
        sut = System(nats_server.url, url, stream, servers_dir / f"system-{number}",
                     extra_env={"AIDRAW_EMBEDDER": "true", "AIDRAW_CLIP_MODEL_PATH": str(clip_path)}).start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def commands(system: System) -> Iterator[CommandApp]:
    app = CommandApp(Settings(stream_name=system.stream, subject_prefix=system.prefix), system.nats_url)
    yield app
    app.close()


def _rows(system: System) -> dict[int, tuple[int, list[float] | None]]:
    with psycopg.connect(system.database_url) as conn:
        return {int(n): (int(v), None if e is None else [float(x) for x in e.strip("[]").split(",")])
                for n, v, e in conn.execute("SELECT id, embedding_version, embedding::text FROM rm.images")}


def _width(system: System) -> int:
    with psycopg.connect(system.database_url) as conn:
        row = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = 'rm.images'::regclass"
                           " AND attname = 'embedding'").fetchone()
    assert row is not None
    return int(row[0])


def _exact_order(rows: dict[int, tuple[int, list[float] | None]], query: int, candidates: list[int]) -> list[int]:
    vector = rows[query][1]
    assert vector is not None
    q = query_vector(vector, 0.5, 0.5)
    score = {n: sum(a * b for a, b in zip(q, rows[n][1] or [], strict=True)) for n in candidates}
    return sorted(candidates, key=lambda n: -score[n])


def test_clip_recipe_is_read_from_the_folder_and_names_the_model(clip_path: Path, tmp_path: Path) -> None:
    recipe = clip_recipe(str(clip_path))
    assert recipe.image_dims == PROJECTION_DIM and recipe.dims == PROMPT_DIMS + PROJECTION_DIM
    assert recipe.version not in (0, PIXELS.version) and clip_recipe(str(clip_path)) == recipe
    assert "CLIP" in recipe.describe()
    other = clip_recipe(str(save_tiny_clip(tmp_path / "other", seed=0)))
    assert other.version == recipe.version  # the same model saved again is the same recipe
    bigger = save_tiny_clip(tmp_path / "bigger", seed=0)
    (bigger / "config.json").write_text((bigger / "config.json").read_text().replace(
        f'"projection_dim": {PROJECTION_DIM}', '"projection_dim": 8'))
    assert clip_recipe(str(bigger)).version != recipe.version  # another model: another version
    with pytest.raises(ValueError, match="no CLIP model"):
        clip_recipe(str(tmp_path))


def test_a_clip_path_that_is_no_model_folder_is_refused_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIDRAW_CLIP_MODEL_PATH", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="AIDRAW_CLIP_MODEL_PATH"):
        Settings.from_env()
    monkeypatch.delenv("AIDRAW_CLIP_MODEL_PATH")
    assert Settings.from_env().clip_model_path == ""


def test_clip_vectors_are_recorded_ranked_and_switched_back_by_a_rebuild(
        system: System, clip_path: Path, commands: CommandApp) -> None:
    people: People = make_people(system)
    recipe: Recipe = clip_recipe(str(clip_path))
    files: dict[int, bytes] = {}
    with client_of(system, people.alice) as client:
        for theme in ("cat", "space"):
            for n in range(2):
                data = draw(theme, n)
                fields = {"prompt": THEMES[theme][n]} if n == 0 else {}  # one without a prompt per theme
                answer = upload(client, data, fields={**fields, "public": "true"})
                assert answer.status_code == 201, answer.text
                files[answer.json()["id"]] = data
    ids = list(files)
    # The worker (in the projector role) records CLIP vectors; the projector copies them.
    # A row not projected yet counts as not embedded (the upload's 201 does not wait for the projection).
    assert eventually(lambda: all(_rows(system).get(n, (0, None))[0] == recipe.version for n in ids),
                      timeout=180), (
        system.log("projector"))
    rows = _rows(system)
    assert _width(system) == recipe.dims
    expected = ClipImageEncoder(str(clip_path)).encode([files[n] for n in ids])
    for n, clip_vector in zip(ids, expected, strict=True):
        stored = rows[n][1]
        assert stored is not None and clip_vector is not None
        image_part = stored[PROMPT_DIMS:]
        assert math.isclose(math.fsum(v * v for v in image_part), 1.0, abs_tol=1e-4)
        assert max(abs(a - b) for a, b in zip(image_part, clip_vector, strict=True)) < 1e-4
    assert not any(rows[ids[1]][1][:PROMPT_DIMS])  # type: ignore[index]  # no prompt: a zero prompt part

    # `similar=` ranks every other image by the combined score over the CLIP vectors.
    with client_of(system, people.alice) as client:
        page = client.get("/api/images", params={"similar": ids[0], "user": people.alice.id}).json()
    assert page["sort_applied"] == "similar" and page["total"] == 3
    assert [i["id"] for i in page["list"]] == _exact_order(rows, ids[0], ids[1:])

    # Back to the pixel recipe: its events are recorded, the live CLIP table leaves them alone...
    assert set(embed_images(commands, PromptEncoder(), ids, PIXELS)) == set(ids)
    assert embed_images(commands, PromptEncoder(), ids, PIXELS) == {}  # once per recipe
    wait_projected(system, log_end(system))
    assert _rows(system) == rows
    # The check names the recipe, and says when the live table is of another one's width.
    assert f"4 images at version {recipe.version} (the current recipe: {recipe.describe()})" in coverage(
        system.database_url, str(clip_path))
    assert (f"the live read model holds {recipe.dims} floats per image, the configured recipe {PIXELS.dims}:"
            " rebuild it") in coverage(system.database_url, "")
    # ... until the rebuild with the path unset swaps in a table of the pixel recipe's shape.
    result = subprocess.run([sys.executable, "-m", "aidraw.cli", "rebuild", "images"], capture_output=True,
                            env={**system.env, "AIDRAW_CLIP_MODEL_PATH": ""}, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "in its new shape" in result.stdout, result.stdout
    assert f"4 images at version {PIXELS.version} (the current recipe: {PIXELS.describe()})" in result.stdout
    after = _rows(system)
    assert _width(system) == PIXELS.dims and {after[n][0] for n in ids} == {PIXELS.version}

    # The live projector (still configured for CLIP) goes on over the swapped-in table: the worker records the
    # next image's CLIP vector, which does not fit and is left out; the image is listed as ever.
    with client_of(system, people.alice) as client:
        answer = upload(client, draw("ocean", 0), fields={"public": "true"})
        assert answer.status_code == 201
        new = answer.json()["id"]
        assert eventually(lambda: commands.load(Image, "image", new).embedded_versions == {recipe.version},
                          timeout=60)
        wait_projected(system, log_end(system))
        listed = client.get("/api/images", params={"user": people.alice.id}).json()["list"]
        assert new in [i["id"] for i in listed]
    assert _rows(system)[new] == (0, None) and system.procs["projector"].poll() is None
