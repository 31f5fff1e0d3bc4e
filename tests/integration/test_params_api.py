"""Params over HTTP: saved parameter sets with free-form JSON `data`, an owner and a public flag."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.catalog_accounts import People, Person, QueryValue, assert_problem, client_of
from tests.system import System


def unique(prefix: str = "set") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


WRITTEN_AT: dict[int, str] = {}  # a created param's write sequence, for someone else's read to wait for


def create(system: System, who: Person, **fields: object) -> dict:
    body = {"name": unique(), "data": {"steps": 20, "sampler": "DDIM"}, **fields}
    with client_of(system, who) as client:
        answer = client.post("/api/params", json=body)
        assert answer.status_code == 201, answer.text
        WRITTEN_AT[answer.json()["id"]] = answer.headers["X-Event-Sequence"]
        return dict(answer.json())


def seen(system: System, who: Person | None, param_id: int, after: str = "0") -> int:
    """The status of `who`'s GET, once the projections reached sequence `after` (someone else's write)."""
    with client_of(system, who) as client:
        return client.get(f"/api/params/{param_id}", headers={"X-Event-Sequence": after}).status_code


def listed_ids(system: System, who: Person | None, **params: QueryValue) -> list[int]:
    with client_of(system, who) as client:
        answer = client.get("/api/params", params={"pageSize": 100, **params})
        assert answer.status_code == 200, answer.text
        return [p["id"] for p in answer.json()["list"]]


def test_create_answers_a_private_param_owned_by_the_caller_readable_at_once(system: System, people: People) -> None:
    with client_of(system, people.alice) as client:
        answer = client.post("/api/params", json={"name": "  portrait  ", "data": {"steps": 30, "cfg": 7.5,
                                                                                      "loras": [{"id": 1}]}})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["name"] == "portrait" and body["user_id"] == people.alice.id and body["public"] is False
        assert body["data"] == {"steps": 30, "cfg": 7.5, "loras": [{"id": 1}]}
        assert int(answer.headers["X-Event-Sequence"]) > 0
        assert answer.headers["Location"] == f"/api/params/{body['id']}"
        assert client.get(f"/api/params/{body['id']}").json() == body


def test_writes_need_a_token_and_anonymous_writes_change_nothing(system: System, people: People) -> None:
    param = create(system, people.alice, public=True)
    with system.client() as anonymous:
        assert_problem(anonymous.post("/api/params", json={"name": "x"}), 401)
        assert_problem(anonymous.patch(f"/api/params/{param['id']}", json={"name": "y"}), 401)
        assert_problem(anonymous.delete(f"/api/params/{param['id']}"), 401)
        assert anonymous.get(f"/api/params/{param['id']}").json()["name"] == param["name"]


def test_a_private_param_is_unknown_to_everyone_but_its_owner_and_admins(system: System, people: People) -> None:
    param = create(system, people.alice)
    assert seen(system, people.alice, param["id"]) == 200
    assert seen(system, people.admin, param["id"]) == 200
    assert seen(system, people.bob, param["id"]) == 404
    assert seen(system, None, param["id"]) == 404
    with client_of(system, people.bob) as bob:
        assert_problem(bob.patch(f"/api/params/{param['id']}", json={"name": "mine"}), 404)
        assert_problem(bob.delete(f"/api/params/{param['id']}"), 404)
        assert_problem(bob.get(f"/api/params/{param['id']}/events"), 404)
    assert param["id"] not in listed_ids(system, people.bob)
    assert param["id"] not in listed_ids(system, None)
    assert param["id"] in listed_ids(system, people.alice)
    assert param["id"] in listed_ids(system, people.admin)
    assert seen(system, people.alice, param["id"]) == 200


def test_a_public_param_is_seen_by_all_and_changed_only_by_owner_or_admin(system: System, people: People) -> None:
    param = create(system, people.alice, public=True)
    after = WRITTEN_AT[param["id"]]  # others' reads do not wait for Alice's write unless told to
    assert seen(system, None, param["id"], after) == 200 and seen(system, people.bob, param["id"], after) == 200
    assert param["id"] in listed_ids(system, None)
    with client_of(system, people.bob) as bob:
        assert_problem(bob.patch(f"/api/params/{param['id']}", json={"name": "mine"}), 403)
        assert_problem(bob.delete(f"/api/params/{param['id']}"), 403)
    with client_of(system, people.admin) as admin:
        changed = admin.patch(f"/api/params/{param['id']}", json={"name": "moderated"})
        assert changed.status_code == 200 and changed.json()["user_id"] == people.alice.id
        deleted = admin.delete(f"/api/params/{param['id']}")
        assert deleted.status_code == 204
    assert seen(system, people.alice, param["id"], after=deleted.headers["X-Event-Sequence"]) == 404


def test_patch_changes_only_the_fields_sent(system: System, people: People) -> None:
    param = create(system, people.alice, data={"a": 1})
    with client_of(system, people.alice) as client:
        renamed = client.patch(f"/api/params/{param['id']}", json={"name": "renamed"})
        assert renamed.status_code == 200
        assert renamed.json()["data"] == {"a": 1} and renamed.json()["public"] is False
        changed = client.patch(f"/api/params/{param['id']}", json={"data": {"b": [1, 2]}, "public": True}).json()
        assert (changed["name"], changed["data"], changed["public"]) == ("renamed", {"b": [1, 2]}, True)
        assert changed["updated_at"] > param["updated_at"] and changed["created_at"] == param["created_at"]
        assert client.get(f"/api/params/{param['id']}").json() == changed
        unchanged = client.patch(f"/api/params/{param['id']}", json={})
        assert unchanged.status_code == 200 and unchanged.json() == changed


@pytest.mark.parametrize("payload", [
    {"id": 5}, {"user_id": 1}, {"created_at": "2020-01-01T00:00:00Z"}, {"updated_at": "2020-01-01T00:00:00Z"},
    {"name": None}, {"data": None}, {"public": None}, {"name": ""}, {"name": "a\x00b"}, {"name": "x" * 201},
    {"data": [1, 2]}, {"data": "text"}, {"public": "yes"}, {"owner": 3},
])
def test_bad_or_read_only_fields_answer_422_and_change_nothing(system: System, people: People,
                                                               payload: dict) -> None:
    param = create(system, people.alice)
    with client_of(system, people.alice) as client:
        assert_problem(client.patch(f"/api/params/{param['id']}", json=payload), 422)
        assert client.get(f"/api/params/{param['id']}").json() == param
        events = client.get(f"/api/params/{param['id']}/events").json()
        assert [e["type"] for e in events] == ["ParamCreated"]


@pytest.mark.parametrize("payload", [{}, {"name": "x", "user_id": 1}, {"name": "x", "public": True, "id": 3},
                                     {"name": "x", "data": 5}, {"data": {}}])
def test_create_refuses_missing_and_read_only_fields(system: System, people: People, payload: dict) -> None:
    with client_of(system, people.alice) as client:
        before = client.get("/api/params").json()["total"]
        assert_problem(client.post("/api/params", json=payload), 422)
        assert client.get("/api/params").json()["total"] == before


def nested(depth: int) -> dict:
    data: dict = {}
    for _ in range(depth - 1):
        data = {"x": data}
    return data


@pytest.mark.parametrize(("raw", "status", "words"), [
    (json.dumps({"name": "big", "data": {"blob": "x" * (64 * 1024)}}), 413, "bytes"),
    (json.dumps({"name": "deep", "data": nested(17)}), 422, "deeper"),
    ('{"name": "nan", "data": {"v": NaN}}', 422, "NaN"),
    ('{"name": "inf", "data": {"v": [Infinity]}}', 422, "NaN"),
    ('{"name": "nul", "data": {"v": "a\\u0000b"}}', 422, "NUL"),
    ('{"name": "surrogate", "data": {"\\ud800": 1}}', 422, "surrogate"),
])
def test_data_that_is_too_big_or_not_storable_is_refused(system: System, people: People, raw: str, status: int,
                                                        words: str) -> None:
    with client_of(system, people.alice) as client:
        before = client.get("/api/params").json()["total"]
        body = assert_problem(client.post("/api/params", content=raw, headers={"content-type": "application/json"}),
                              status)
        assert words in body["detail"]
        assert client.get("/api/params").json()["total"] == before
        param = create(system, people.alice)
        assert_problem(client.patch(f"/api/params/{param['id']}", content=raw.replace('"name"', '"public": true, "x"')
                                    .replace('"x": ', '"name": '),
                                    headers={"content-type": "application/json"}), status)
        assert client.get(f"/api/params/{param['id']}").json() == param


def test_data_just_inside_the_limits_is_kept_exactly(system: System, people: People) -> None:
    data = {"deep": nested(15), "text": "é" * 1000, "n": [1, 2.5, -3e10, True, None]}
    param = create(system, people.alice, data=data)
    assert param["data"] == data
    with client_of(system, people.alice) as client:
        assert client.get(f"/api/params/{param['id']}").json()["data"] == data


MAX_SAFE = 2**53 - 1


@pytest.mark.parametrize(("data", "path"), [
    ({"seed": 2**53}, ["seed"]), ({"loras": [1, {"id": -(2**53)}]}, ["loras", "1", "id"]),
    ({"n": 10**40}, ["n"]),
])
def test_integers_a_javascript_client_would_round_are_refused_naming_their_path(system: System, people: People,
                                                                                data: dict, path: list[str]) -> None:
    param = create(system, people.alice)
    with client_of(system, people.alice) as client:
        before = client.get("/api/params").json()["total"]
        for answer in (client.post("/api/params", json={"name": unique(), "data": data}),
                       client.patch(f"/api/params/{param['id']}", json={"data": data})):
            body = assert_problem(answer, 422)
            assert body["detail"].startswith(".".join(["data", *path]) + ": ") and "as a string" in body["detail"]
            assert body["errors"][0]["loc"] == ["body", "data", *path]
        assert client.get("/api/params").json()["total"] == before
        assert client.get(f"/api/params/{param['id']}").json() == param
    edges = {"max": MAX_SAFE, "min": -MAX_SAFE, "float": 1e300}
    assert create(system, people.alice, data=edges)["data"] == edges


def test_the_name_may_be_sent_inside_data(system: System, people: People) -> None:
    with client_of(system, people.alice) as client:
        answer = client.post("/api/params", json={"data": {"name": "  inside  ", "steps": 20}})
        assert answer.status_code == 201, answer.text
        param = answer.json()
        assert param["name"] == "inside" and param["data"] == {"name": "  inside  ", "steps": 20}
        renamed = client.patch(f"/api/params/{param['id']}", json={"data": {"name": "moved", "steps": 30}})
        assert renamed.status_code == 200 and renamed.json()["name"] == "moved"
        kept = client.patch(f"/api/params/{param['id']}", json={"name": "top", "data": {"name": "inner"}})
        assert kept.json()["name"] == "top" and kept.json()["data"] == {"name": "inner"}
        unnamed = client.patch(f"/api/params/{param['id']}", json={"data": {"steps": 1}})
        assert unnamed.json()["name"] == "top"
        before = client.get(f"/api/params/{param['id']}").json()
        for bad in ({"data": {"name": 5}}, {"data": {"name": None}}, {"data": {"name": "  "}}):
            assert_problem(client.post("/api/params", json=bad), 422)
            assert_problem(client.patch(f"/api/params/{param['id']}", json=bad), 422)
        assert "name, or data.name" in assert_problem(client.post("/api/params", json={"data": {}}), 422)["detail"]
        assert client.get(f"/api/params/{param['id']}").json() == before


@pytest.fixture(scope="module")
def listing(system: System, people: People) -> Iterator[dict[str, object]]:
    marker = unique("lst")
    alice_private = create(system, people.alice, name=f"{marker} a-private")
    alice_public = create(system, people.alice, name=f"{marker} a-public", public=True)
    bob_public = create(system, people.bob, name=f"{marker} b-public", public=True)
    bob_private = create(system, people.bob, name=f"{marker} b-private")
    yield {"marker": marker, "alice_private": alice_private["id"], "alice_public": alice_public["id"],
           "bob_public": bob_public["id"], "bob_private": bob_private["id"]}


def test_lists_show_what_the_caller_may_see_newest_first(system: System, people: People, listing: dict) -> None:
    q = {"q": listing["marker"]}
    assert listed_ids(system, None, **q) == [listing["bob_public"], listing["alice_public"]]
    assert listed_ids(system, people.alice, **q) == [listing["bob_public"], listing["alice_public"],
                                                     listing["alice_private"]]
    assert listed_ids(system, people.admin, **q) == [listing["bob_private"], listing["bob_public"],
                                                     listing["alice_public"], listing["alice_private"]]
    assert listed_ids(system, people.alice, sort="date+", **q)[0] == listing["alice_private"]
    with client_of(system, people.alice) as client:
        page = client.get("/api/params", params={**q, "pageSize": 2}).json()
        assert (page["total"], page["next"], len(page["list"])) == (3, True, 2)
        last = client.get("/api/params", params={**q, "pageSize": 2, "page": 2}).json()
        assert (last["total"], last["next"], len(last["list"])) == (3, False, 1)
        beyond = client.get("/api/params", params={**q, "pageSize": 2, "page": 5}).json()
        assert (beyond["total"], beyond["list"]) == (3, [])


def test_list_filters_combine(system: System, people: People, listing: dict) -> None:
    q = {"q": listing["marker"]}
    assert listed_ids(system, people.alice, user=people.bob.id, **q) == [listing["bob_public"]]
    assert listed_ids(system, people.alice, user_id=people.alice.id, **q) == [listing["alice_public"],
                                                                              listing["alice_private"]]
    assert listed_ids(system, people.alice, public="false", **q) == [listing["alice_private"]]
    assert listed_ids(system, None, public="false", **q) == []
    assert set(listed_ids(system, people.alice, user=f"{people.alice.id},{people.bob.id}", public="true", **q)) == {
        listing["alice_public"], listing["bob_public"]}
    with client_of(system, people.alice) as client:
        both = client.get(f"/api/params?q={listing['marker']}&user={people.alice.id}&user={people.bob.id}").json()
        assert both["total"] == 0  # a repeated parameter intersects: nobody is both users
    today = datetime.now(UTC)
    assert len(listed_ids(system, people.alice, date=f"{today:%Y%m%d}+", **q)) == 3
    assert len(listed_ids(system, people.alice, date=f"{today:%Y%m%d} ", **q)) == 3  # an unencoded '+'
    assert listed_ids(system, people.alice, date=f"{today - timedelta(days=2):%Y%m%d}-", **q) == []
    assert listed_ids(system, people.alice, date="2000~2001", **q) == []
    assert len(listed_ids(system, people.alice, date=f"2000~{today:%Y}", **q)) == 3


@pytest.mark.parametrize("params", [{"bogus": "1"}, {"user": "abc"}, {"public": "maybe"}, {"date": "2022-01-01"},
                                    {"date": "20221301"}, {"tag": "x"}, {"page": "0"}, {"pageSize": "101"},
                                    {"sort": "likes"}, {"user": "1,"}])
def test_unknown_or_malformed_list_parameters_answer_422(system: System, params: dict) -> None:
    with system.client() as client:
        body = assert_problem(client.get("/api/params", params=params), 422)
        name = next(iter(params))
        assert name in body["detail"] or name in json.dumps(body.get("errors"))


def test_delete_removes_the_param_and_the_audit_trail_keeps_its_history(system: System, people: People) -> None:
    param = create(system, people.alice)
    with client_of(system, people.alice) as client:
        client.patch(f"/api/params/{param['id']}", json={"name": "second", "public": True})
        deleted = client.delete(f"/api/params/{param['id']}")
        assert deleted.status_code == 204 and int(deleted.headers["X-Event-Sequence"]) > 0
        assert_problem(client.get(f"/api/params/{param['id']}"), 404)
        assert_problem(client.patch(f"/api/params/{param['id']}", json={"name": "x"}), 404)
        assert_problem(client.delete(f"/api/params/{param['id']}"), 404)
        assert param["id"] not in listed_ids(system, people.alice)
        events = client.get(f"/api/params/{param['id']}/events").json()
        assert [e["type"] for e in events] == ["ParamCreated", "ParamRenamed", "ParamVisibilityChanged",
                                               "ParamDeleted"]
        assert events[0]["data"]["user_id"] == people.alice.id


def test_the_same_idempotency_key_creates_once_and_is_not_anyone_elses(system: System, people: People) -> None:
    key = uuid.uuid4().hex
    name = unique()
    with client_of(system, people.alice) as alice:
        first = alice.post("/api/params", json={"name": name}, headers={"Idempotency-Key": key})
        again = alice.post("/api/params", json={"name": name}, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        assert alice.get("/api/params", params={"q": name}).json()["total"] == 1
    with client_of(system, people.bob) as bob:  # another user's key is a new key: nothing is revealed
        mine = bob.post("/api/params", json={"name": name}, headers={"Idempotency-Key": key})
        assert mine.status_code == 201 and mine.json()["user_id"] == people.bob.id
        other = bob.post("/api/params", json={"name": unique()}, headers={"Idempotency-Key": key})
        assert_problem(other, 422)  # Bob's own key, now used by Bob with another body


def test_a_repeat_after_delete_answers_the_first_answer(system: System, people: People) -> None:
    key, body = uuid.uuid4().hex, {"name": unique(), "data": {"steps": 7}}
    with client_of(system, people.alice) as alice:
        first = alice.post("/api/params", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201
        assert alice.patch(f"/api/params/{first.json()['id']}", json={"name": unique()}).status_code == 200
        assert alice.delete(f"/api/params/{first.json()['id']}").status_code == 204
        again = alice.post("/api/params", json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 201 and again.json() == first.json()
        assert alice.get(f"/api/params/{first.json()['id']}").status_code == 404


@pytest.mark.parametrize("path", ["/api/params/0", "/api/params/-1", "/api/params/9007199254740993",
                                  "/api/params/abc", "/api/params/123456789"])
def test_bad_and_unknown_ids_are_client_errors(system: System, people: People, path: str) -> None:
    with client_of(system, people.alice) as client:
        assert client.get(path).status_code in (404, 422)
        assert client.patch(path, json={"name": "x"}).status_code in (404, 422)
        assert client.delete(path).status_code in (404, 422)
