"""Featured collections (choices) over HTTP: weighted lists of images their owner can see."""

from __future__ import annotations

import uuid

import pytest

from tests.catalog_accounts import People, Person, QueryValue, assert_problem, client_of
from tests.image_files import upload
from tests.image_support import wait_projected
from tests.system import System


def unique(prefix: str = "picks") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_image(system: System, who: Person, public: bool = True) -> int:
    with client_of(system, who) as client:
        answer = upload(client, fields={"public": "true" if public else "false"})
        assert answer.status_code == 201, answer.text
    wait_projected(system, answer.headers["X-Event-Sequence"])
    return int(answer.json()["id"])


def new_choice(system: System, who: Person, **body: object) -> dict:
    with client_of(system, who) as client:
        answer = client.post("/api/choices", json={"name": unique(), **body})
        assert answer.status_code == 201, answer.text
    wait_projected(system, answer.headers["X-Event-Sequence"])
    return dict(answer.json())


def status_of(system: System, who: Person | None, choice_id: int) -> int:
    with client_of(system, who) as client:
        return client.get(f"/api/choices/{choice_id}").status_code


def test_create_answers_the_collection_in_the_owners_order_readable_at_once(system: System, people: People) -> None:
    first, second = new_image(system, people.alice), new_image(system, people.bob)
    with client_of(system, people.alice) as client:
        answer = client.post("/api/choices", json={"name": " Best of ", "items": [
            {"image_id": second, "weight": 2.5}, {"image_id": first}]})
        assert answer.status_code == 201, answer.text
        choice = answer.json()
        assert choice["name"] == "Best of" and choice["public"] is True and choice["user_id"] == people.alice.id
        assert choice["items"] == [{"image_id": second, "weight": 2.5}, {"image_id": first, "weight": 1.0}]
        assert answer.headers["Location"] == f"/api/choices/{choice['id']}"
        assert client.get(f"/api/choices/{choice['id']}").json() == choice
        in_it = client.get("/api/images", params={"choice": choice["id"]}).json()
        assert {i["id"] for i in in_it["list"]} == {first, second}


def test_only_images_the_owner_can_see_may_be_added(system: System, people: People) -> None:
    own_private, others_private = new_image(system, people.alice, False), new_image(system, people.bob, False)
    assert new_choice(system, people.alice, items=[{"image_id": own_private}])["items"][0]["image_id"] == own_private
    with client_of(system, people.alice) as client:
        for bad in (others_private, 123456789):
            body = assert_problem(client.post("/api/choices", json={"name": "x", "items": [
                {"image_id": own_private}, {"image_id": bad}]}), 422)
            assert str(bad) in body["detail"] and body["errors"][0]["loc"] == ["body", "items", "1", "image_id"]


def test_an_admin_cannot_slip_in_images_the_owner_cannot_see(system: System, people: People) -> None:
    choice = new_choice(system, people.alice)
    hidden = new_image(system, people.bob, False)
    with client_of(system, people.admin) as admin:
        assert_problem(admin.patch(f"/api/choices/{choice['id']}", json={"items": [{"image_id": hidden}]}), 422)
        assert admin.patch(f"/api/choices/{choice['id']}", json={"name": "moderated"}).status_code == 200


@pytest.mark.parametrize("body", [
    {"items": []}, {"name": ""}, {"name": "   "}, {"name": "x" * 201}, {"name": "ok", "user_id": 5},
    {"name": "ok", "public": "yes"}, {"name": "ok", "items": [{"image_id": "1"}]},
    {"name": "ok", "items": [{"image_id": 1, "weight": -1}]}, {"name": "ok", "items": [{"image_id": 1, "x": 1}]},
    {"name": "ok", "items": [{"image_id": 0}]}, {"name": "ok", "items": {"image_id": 1}}, {"name": None},
])
def test_malformed_collections_are_422(system: System, people: People, body: dict) -> None:
    with client_of(system, people.alice) as client:
        assert_problem(client.post("/api/choices", json=body), 422)


def test_an_image_may_be_in_a_collection_once(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    with client_of(system, people.alice) as client:
        body = assert_problem(client.post("/api/choices", json={"name": "x", "items": [
            {"image_id": image}, {"image_id": image, "weight": 3}]}), 422)
        assert "twice" in body["detail"]


def test_the_owner_changes_name_public_flag_and_items(system: System, people: People) -> None:
    a, b = new_image(system, people.alice), new_image(system, people.alice)
    choice = new_choice(system, people.alice, items=[{"image_id": a}])
    with client_of(system, people.alice) as client:
        answer = client.patch(f"/api/choices/{choice['id']}", json={
            "name": "Renamed", "public": False, "items": [{"image_id": b, "weight": 0.5}, {"image_id": a}]})
        assert answer.status_code == 200, answer.text
        changed = answer.json()
        assert (changed["name"], changed["public"]) == ("Renamed", False)
        assert changed["items"] == [{"image_id": b, "weight": 0.5}, {"image_id": a, "weight": 1.0}]
        assert client.get(f"/api/choices/{choice['id']}").json() == changed
        assert_problem(client.patch(f"/api/choices/{choice['id']}", json={"items": None}), 422)
        assert_problem(client.patch(f"/api/choices/{choice['id']}", json={"user_id": 1}), 422)


def test_a_private_collection_is_unknown_to_everyone_but_its_owner_and_admins(system: System,
                                                                             people: People) -> None:
    choice = new_choice(system, people.alice, public=False)
    assert [status_of(system, who, choice["id"]) for who in (people.alice, people.admin, people.bob, None)] == [
        200, 200, 404, 404]
    with client_of(system, people.bob) as bob:
        assert choice["id"] not in [c["id"] for c in bob.get("/api/choices", params={"pageSize": 100}).json()["list"]]
        assert bob.get("/api/images", params={"choice": choice["id"]}).json()["total"] == 0
        assert_problem(bob.patch(f"/api/choices/{choice['id']}", json={"name": "mine"}), 404)
        assert_problem(bob.delete(f"/api/choices/{choice['id']}"), 404)


def test_only_the_owner_or_an_admin_may_change_or_delete(system: System, people: People) -> None:
    choice = new_choice(system, people.alice)
    with client_of(system, people.bob) as bob:
        assert_problem(bob.patch(f"/api/choices/{choice['id']}", json={"name": "mine"}), 403)
        assert_problem(bob.delete(f"/api/choices/{choice['id']}"), 403)
    with system.client() as anonymous:
        assert_problem(anonymous.post("/api/choices", json={"name": "x"}), 401)
        assert_problem(anonymous.patch(f"/api/choices/{choice['id']}", json={"name": "x"}), 401)
        assert_problem(anonymous.delete(f"/api/choices/{choice['id']}"), 401)
    with client_of(system, people.admin) as admin:
        deleted = admin.delete(f"/api/choices/{choice['id']}")
        assert deleted.status_code == 204
    wait_projected(system, deleted.headers["X-Event-Sequence"])
    assert status_of(system, people.alice, choice["id"]) == 404


def test_visitors_see_only_the_items_they_may_see(system: System, people: People) -> None:
    public, private = new_image(system, people.alice), new_image(system, people.alice, False)
    choice = new_choice(system, people.alice, items=[{"image_id": private}, {"image_id": public}])
    with client_of(system, people.bob) as bob:
        assert bob.get(f"/api/choices/{choice['id']}").json()["items"] == [{"image_id": public, "weight": 1.0}]
        listed = bob.get("/api/choices", params={"user": people.alice.id, "pageSize": 100}).json()["list"]
        assert next(c for c in listed if c["id"] == choice["id"])["items"] == [{"image_id": public, "weight": 1.0}]
    with client_of(system, people.alice) as alice:
        assert len(alice.get(f"/api/choices/{choice['id']}").json()["items"]) == 2


def test_a_deleted_image_leaves_the_collection_and_a_change_keeps_the_rest(system: System, people: People) -> None:
    keep, gone = new_image(system, people.alice), new_image(system, people.alice)
    choice = new_choice(system, people.alice, items=[{"image_id": keep}, {"image_id": gone}])
    with client_of(system, people.alice) as alice:
        assert alice.delete(f"/api/images/{gone}").status_code == 204
        assert alice.get(f"/api/choices/{choice['id']}").json()["items"] == [{"image_id": keep, "weight": 1.0}]
        renamed = alice.patch(f"/api/choices/{choice['id']}", json={"name": "still here"})
        assert renamed.json()["items"] == [{"image_id": keep, "weight": 1.0}]
        assert alice.get(f"/api/choices/{choice['id']}").json()["items"] == [{"image_id": keep, "weight": 1.0}]


def test_lists_filter_by_owner_public_flag_and_name(system: System, people: People) -> None:
    marker = unique("m")
    mine = new_choice(system, people.alice, name=f"{marker} one")
    hidden = new_choice(system, people.alice, name=f"{marker} two", public=False)
    theirs = new_choice(system, people.bob, name=f"{marker} three")
    with client_of(system, people.alice) as client:
        def ids(**params: QueryValue) -> list[int]:
            answer = client.get("/api/choices", params={"q": marker, **params})
            assert answer.status_code == 200, answer.text
            return [c["id"] for c in answer.json()["list"]]
        assert ids() == [theirs["id"], hidden["id"], mine["id"]]
        assert ids(sort="date+") == [mine["id"], hidden["id"], theirs["id"]]
        assert ids(user=people.alice.id) == [hidden["id"], mine["id"]]
        assert ids(public="false") == [hidden["id"]]
        assert_problem(client.get("/api/choices", params={"bogus": 1}), 422)
        assert_problem(client.get("/api/choices", params={"user": "me"}), 422)


def test_the_audit_trail_shows_the_history(system: System, people: People) -> None:
    choice = new_choice(system, people.alice)
    with client_of(system, people.alice) as client:
        client.patch(f"/api/choices/{choice['id']}", json={"public": False})
        client.delete(f"/api/choices/{choice['id']}")
        events = client.get(f"/api/choices/{choice['id']}/events").json()
    assert [e["type"] for e in events] == ["ChoiceCreated", "ChoiceChanged", "ChoiceDeleted"]
    assert events[1]["data"]["public"] is False
