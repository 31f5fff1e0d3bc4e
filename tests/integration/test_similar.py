"""`similar=` and the recommendations through the API, on embeddings the real worker computed (docs/search.md).

Images of two themes (tests/themes.py) are uploaded with paraphrased prompts; the embedding worker records an
ImageEmbedded per image and the projector copies it. Then the lists rank by likeness while every filter and the
visibility rule still apply."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.catalog_accounts import People, assert_problem, client_of, make_people
from tests.conftest import _counter
from tests.image_files import upload
from tests.image_support import eventually
from tests.system import System
from tests.themes import THEMES, draw


@pytest.fixture(scope="module")
def system(nats_server, postgres_server, servers_dir: Path) -> Iterator[System]:  # type: ignore[no-untyped-def]
    number = next(_counter)
    stream = f"S{os.getpid()}_{number}"
    url = postgres_server.create_database(f"sys_{os.getpid()}_{number}")
    sut = System(nats_server.url, url, stream, servers_dir / f"system-{number}",
                 extra_env={"AIDRAW_EMBEDDER": "true"}).start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def people(system: System) -> People:
    return make_people(system)


@pytest.fixture(scope="module")
def gallery(system: System, people: People) -> dict[str, list[int]]:
    """Three images per theme of 'cat' and 'space' by Alice and Bob (Bob's last one private), all embedded."""
    made: dict[str, list[int]] = {"cat": [], "space": []}
    for theme, ids in made.items():
        for n, prompt in enumerate(THEMES[theme][:3]):
            owner = people.alice if n < 2 else people.bob
            with client_of(system, owner) as client:
                answer = upload(client, draw(theme, n), fields={
                    "prompt": prompt, "public": "false" if owner is people.bob and theme == "space" else "true"})
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["id"])
    first = made["cat"][0]
    with client_of(system, people.admin) as admin:
        def embedded() -> bool:
            page = admin.get("/api/images", params={"similar": first}).json()
            return page["sort_applied"] == "similar" and page["total"] == 5
        assert eventually(embedded, timeout=180), (
            admin.get("/api/images", params={"similar": first}).text + system.log("projector") + system.log("api"))
        # Every image is embedded once the nearest list covers all five others.
        assert eventually(lambda: len(_ids(admin.get("/api/images", params={"similar": first}).json())) == 5
                          and _all_embedded(system), timeout=120)
    return made


def _ids(page: dict) -> list[int]:
    return [item["id"] for item in page["list"]]


def _all_embedded(system: System) -> bool:
    import psycopg
    with psycopg.connect(system.database_url) as conn:
        row = conn.execute("SELECT count(*) FILTER (WHERE embedding_version = 0) FROM rm.images").fetchone()
    return bool(row and row[0] == 0)


def test_similar_ranks_the_same_theme_first_and_leaves_the_query_image_out(
        system: System, people: People, gallery: dict[str, list[int]]) -> None:
    cat, space = gallery["cat"], gallery["space"]
    with client_of(system, people.admin) as admin:
        page = admin.get("/api/images", params={"similar": cat[0]}).json()
    assert page["sort_applied"] == "similar"
    assert cat[0] not in _ids(page)
    assert set(_ids(page)[:2]) == set(cat[1:])
    assert set(_ids(page)) == set(cat[1:] + space)
    assert page["total"] == 5 and page["total_exact"]


def test_similar_keeps_every_filter_and_the_visibility_rule(system: System, people: People,
                                                            gallery: dict[str, list[int]]) -> None:
    cat, space = gallery["cat"], gallery["space"]
    with client_of(system, people.alice) as alice:
        mine = alice.get("/api/images", params={"similar": cat[0], "user": people.alice.id}).json()
        assert _ids(mine)[:1] == [cat[1]] and set(_ids(mine)) == {cat[1], space[0], space[1]}
        assert mine["total"] == 3
        seen = alice.get("/api/images", params={"similar": space[0]}).json()
        assert space[2] not in _ids(seen) and seen["total"] == 4  # Bob's private image stays hidden
        assert_problem(alice.get("/api/images", params={"similar": space[2]}), 404)
    with client_of(system, None) as anonymous:
        assert anonymous.get("/api/images", params={"similar": cat[0]}).json()["total"] == 4
        assert_problem(anonymous.get("/api/images", params={"similar": "12x"}), 422)
        assert_problem(anonymous.get("/api/images", params={"similar": 123456789}), 404)


def test_similar_pages_are_stable_and_complete(system: System, people: People,
                                               gallery: dict[str, list[int]]) -> None:
    with client_of(system, people.admin) as admin:
        whole = _ids(admin.get("/api/images", params={"similar": gallery["cat"][0]}).json())
        pages = [admin.get("/api/images", params={"similar": gallery["cat"][0], "page": n, "page_size": 2}).json()
                 for n in (1, 2, 3)]
    assert [i for p in pages for i in _ids(p)] == whole
    assert [p["next"] for p in pages] == [True, True, False]


def test_recommendations_rank_from_likes_and_collections(system: System, people: People,
                                                         gallery: dict[str, list[int]]) -> None:
    cat, space = gallery["cat"], gallery["space"]
    with client_of(system, None) as anonymous:
        assert_problem(anonymous.get("/api/images", params={"sort": "like"}), 422)
        assert_problem(anonymous.get("/api/images", params={"sort": "history"}), 422)
    with client_of(system, people.bob) as bob:
        empty = bob.get("/api/images", params={"sort": "like"}).json()
        assert empty["sort_applied"] == "date-" and empty["total"] == 6
        assert bob.put(f"/api/images/{space[0]}/like").status_code in (200, 204)
        liked = bob.get("/api/images", params={"sort": "like"}).json()
        assert liked["sort_applied"] == "like" and liked["total"] == 6
        order = _ids(liked)
        assert order[:2] == [i for i in order if i in space and i != space[0]][:2]  # the rest of space first
        assert order[-1] == space[0]  # the liked one after the recommendations (here: all the others), not removed
        made = bob.post("/api/choices", json={"name": "cats", "items": [{"image_id": cat[0], "weight": 2.0}]})
        assert made.status_code == 201, made.text
        chosen = bob.get("/api/images", params={"sort": "choice", "choice": made.json()["id"]}).json()
        assert chosen["sort_applied"] == "choice" and set(_ids(chosen)[:2]) == set(cat[1:])
        assert chosen["total"] == 6  # choice= names the source here; it does not filter
        assert_problem(bob.get("/api/images", params={"sort": "choice"}), 422)
