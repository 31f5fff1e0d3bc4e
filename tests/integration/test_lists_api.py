"""Lists over HTTP (docs/api.md "Lists"): one visibility rule for lists, totals and details; the spellings a
client may use; 422 naming the parameter on every collection; cursors. The engine's semantics in depth are
proven against a reference in test_list_engine_properties.py; here the real API answers."""

from __future__ import annotations

import uuid

import pytest

from tests.catalog_accounts import People, Person, assert_problem, client_of
from tests.image_files import upload
from tests.image_support import wait_projected
from tests.system import System


@pytest.fixture(scope="module")
def gallery(system: System, people: People) -> dict[str, int | str]:
    """Under one new tag: alice's public and private image, bob's public and private image, oldest first."""
    tag = f"lists-{uuid.uuid4().hex[:8]}"
    made: dict[str, int | str] = {"tag": tag}
    sequence = "0"
    for key, who, public in (("alice_public", people.alice, "true"), ("alice_private", people.alice, "false"),
                             ("bob_public", people.bob, "true"), ("bob_private", people.bob, "false")):
        with client_of(system, who) as client:
            answer = upload(client, fields={"tags": tag, "public": public, "name": key})
            assert answer.status_code == 201, answer.text
            made[key], sequence = answer.json()["id"], answer.headers["X-Event-Sequence"]
    wait_projected(system, sequence)  # other callers' reads do not wait for alice's and bob's writes
    return made


def page(system: System, who: Person | None, path: str) -> dict:
    with client_of(system, who) as client:
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.mark.parametrize(("who", "sees"), [
    (None, ["bob_public", "alice_public"]),
    ("alice", ["bob_public", "alice_private", "alice_public"]),
    ("bob", ["bob_private", "bob_public", "alice_public"]),
    ("admin", ["bob_private", "bob_public", "alice_private", "alice_public"]),
])
def test_lists_totals_and_details_show_exactly_what_the_caller_may_see(
    system: System, people: People, gallery: dict, who: str | None, sees: list[str]
) -> None:
    caller = getattr(people, who) if who else None
    body = page(system, caller, f"/api/images?tag={gallery['tag']}")
    assert [i["id"] for i in body["list"]] == [gallery[k] for k in sees]
    assert (body["total"], body["total_exact"], body["next"]) == (len(sees), True, False)
    assert page(system, caller, f"/api/images?tag={gallery['tag']}&user={people.bob.id}")["total"] == \
        len([k for k in sees if k.startswith("bob")])
    with client_of(system, caller) as client:
        for key in ("alice_public", "alice_private", "bob_public", "bob_private"):
            status = client.get(f"/api/images/{gallery[key]}").status_code
            assert status == (200 if key in sees else 404), key


def test_public_false_lists_only_private_items_the_caller_may_see(system: System, people: People,
                                                                   gallery: dict) -> None:
    path = f"/api/images?tag={gallery['tag']}&public=false"
    assert page(system, None, path)["list"] == []
    assert [i["id"] for i in page(system, people.alice, path)["list"]] == [gallery["alice_private"]]


def test_an_unencoded_plus_means_plus_in_dates_and_sort(system: System, people: People, gallery: dict) -> None:
    oldest_first = [gallery["alice_public"], gallery["alice_private"], gallery["bob_public"], gallery["bob_private"]]
    for spelling in ("date=2000+&sort=date+", "date=2000%2B&sort=date%2B", "date=20000101~99991231&sort=date+"):
        body = page(system, people.admin, f"/api/images?tag={gallery['tag']}&{spelling}")
        assert [i["id"] for i in body["list"]] == oldest_first, spelling
    assert page(system, people.admin, f"/api/images?tag={gallery['tag']}&date=2000-")["total"] == 0


def test_commas_unite_and_repeats_intersect(system: System, people: People, gallery: dict) -> None:
    both = f"/api/images?tag={gallery['tag']}&user={people.alice.id},{people.bob.id}"
    assert page(system, None, both)["total"] == 2
    neither = f"/api/images?tag={gallery['tag']}&user={people.alice.id}&user={people.bob.id}"
    assert page(system, None, neither)["total"] == 0
    upper = str(gallery["tag"]).upper()
    assert page(system, None, f"/api/images?tag={upper},no-such-tag")["total"] == 2


def test_the_cursor_walk_and_the_page_walk_agree(system: System, people: People, gallery: dict) -> None:
    by_page = [i["id"] for n in (1, 2) for i in
               page(system, people.admin, f"/api/images?tag={gallery['tag']}&pageSize=2&page={n}")["list"]]
    first = page(system, people.admin, f"/api/images?tag={gallery['tag']}&pageSize=2")
    assert first["next"] is True and first["cursor"]
    second = page(system, people.admin, f"/api/images?tag={gallery['tag']}&pageSize=2&cursor={first['cursor']}")
    assert second["page"] == 2 and second["next"] is False and second["cursor"] is None
    assert [i["id"] for i in first["list"] + second["list"]] == by_page


@pytest.mark.parametrize("path", ["/api/images", "/api/models", "/api/params", "/api/datasets", "/api/dataset",
                                  "/api/choices", "/api/tags", "/api/users", "/api/sessions"])
@pytest.mark.parametrize(("query", "named"), [("bogus=1", "bogus"), ("pageSize=0", "pageSize"),
                                              ("page=1&page=2", "page"), ("sort=sideways", "sort"),
                                              ("user_id=x", "user_id"), ("date=2023~2022", "date"),
                                              ("page=+1", "page"), ("sort=%20date-", "sort")])
def test_every_list_refuses_unknown_and_malformed_parameters_naming_them(
    system: System, people: People, path: str, query: str, named: str
) -> None:
    if (path, named) in {("/api/users", "user_id"), ("/api/sessions", "date")}:
        named = query.split("=")[0]  # not a parameter of that list at all: refused as unknown, by name
    with client_of(system, people.alice) as client:
        body = assert_problem(client.get(f"{path}?{query}"), 422)
    assert body["errors"][0]["loc"] == ["query", named] and named in body["detail"]
