"""Datasets over HTTP (also under the original spec's alias /api/dataset): training sets whose items are URLs,
images and featured collections, each checked against what the owner may see."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from tests.catalog_accounts import People, Person, QueryValue, assert_problem, client_of
from tests.catalog_objects import create_choice, delete, upload_image
from tests.system import System

BLOB_URL = "/api/blobs/ab/cd/abcd" + "0" * 60 + ".png"


@pytest.fixture(scope="module")
def pictures(system: System, people: People) -> dict[str, int]:
    """Images and collections with every visibility that matters to the checks."""
    alice_private = upload_image(system, people.alice, public=False)["id"]
    bob_public = upload_image(system, people.bob, public=True)["id"]
    bob_private = upload_image(system, people.bob, public=False)["id"]
    return {
        "alice_private": alice_private, "bob_public": bob_public, "bob_private": bob_private,
        "admin_private": upload_image(system, people.admin, public=False)["id"],
        "alice_choice": create_choice(system, people.alice, public=False, image_ids=(alice_private,))["id"],
        "bob_public_choice": create_choice(system, people.bob, public=True, image_ids=(bob_public,))["id"],
        "bob_private_choice": create_choice(system, people.bob, public=False)["id"],
    }


def unique(prefix: str = "ds") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create(system: System, who: Person, base: str = "/api/datasets", **fields: object) -> dict:
    with client_of(system, who) as client:
        answer = client.post(base, json={"name": unique(), **fields})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def total(system: System, who: Person) -> int:
    with client_of(system, who) as client:
        return int(client.get("/api/datasets").json()["total"])


def test_create_keeps_urls_images_and_collections_the_owner_can_see(system: System, people: People,
                                                                     pictures: dict) -> None:
    items = {"oss": ["https://cdn.example.com/a.png", "http://93.184.216.34:9000/b/c.jpg", BLOB_URL],
             "images": [pictures["alice_private"], pictures["bob_public"]],
             "choices": [pictures["alice_choice"], pictures["bob_public_choice"]], "repeats": 10}
    with client_of(system, people.alice) as client:
        answer = client.post("/api/datasets", json={"name": " faces ", "items": items})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert (body["name"], body["items"], body["user_id"], body["public"]) == ("faces", items, people.alice.id,
                                                                                   False)
        assert answer.headers["Location"] == f"/api/datasets/{body['id']}"
        assert client.get(f"/api/datasets/{body['id']}").json() == body
        assert client.get(f"/api/dataset/{body['id']}").json() == body


def test_items_default_to_empty_lists(system: System, people: People) -> None:
    assert create(system, people.alice)["items"] == {"oss": [], "images": [], "choices": [], "repeats": 1}
    assert create(system, people.alice, items={"oss": [BLOB_URL]})["items"] == {"oss": [BLOB_URL], "images": [],
                                                                                  "choices": [], "repeats": 1}


@pytest.mark.parametrize(("items", "where"), [
    ({"images": ["bob_private"]}, "images.0"),
    ({"images": ["alice_private", "admin_private"]}, "images.1"),
    ({"images": [123456789]}, "images.0"),
    ({"choices": ["bob_private_choice"]}, "choices.0"),
    ({"choices": [987654321]}, "choices.0"),
    ({"images": ["alice_private", "alice_private"]}, "images.1"),
    ({"oss": ["https://a.example/x.png", "ftp://a.example/y.png"]}, "oss.1"),
    ({"oss": ["file:///etc/passwd"]}, "oss.0"),
    ({"oss": ["/api/blobs/../../etc/passwd"]}, "oss.0"),
    ({"oss": ["/etc/passwd"]}, "oss.0"),
    ({"oss": ["https://a.example/x y.png"]}, "oss.0"),
    ({"oss": ["https://a.example/x.png", "https://a.example/x.png"]}, "oss.1"),
    # nothing the training fetcher must not reach: metadata, loopback, private, in any spelling
    ({"oss": ["https://a.example/x.png", "http://169.254.169.254/latest/meta-data/"]}, "oss.1"),
    ({"oss": ["http://[fd00:ec2::254]/latest"]}, "oss.0"),
    ({"oss": ["http://[::ffff:169.254.169.254]/"]}, "oss.0"),
    ({"oss": ["http://2130706433/x.png"]}, "oss.0"),
    ({"oss": ["http://0177.0.0.1/x.png"]}, "oss.0"),
    ({"oss": ["http://[::1]:8000/x.png"]}, "oss.0"),
    ({"oss": ["http://10.0.0.2:9000/b/c.jpg"]}, "oss.0"),
    ({"oss": ["http://localhost:8000/x.png"]}, "oss.0"),
    ({"oss": ["http://metadata.google.internal/computeMetadata/v1/"]}, "oss.0"),
    ({"oss": ["gopher://a.example/x"]}, "oss.0"),
])
def test_a_bad_item_is_named_and_nothing_is_stored(system: System, people: People, pictures: dict, items: dict,
                                                   where: str) -> None:
    # Names of the module's pictures become their ids; other values are sent as they are.
    resolved = {key: [pictures.get(v, v) if isinstance(v, str) else v for v in values]
                for key, values in items.items()}
    before = total(system, people.alice)
    with client_of(system, people.alice) as client:
        body = assert_problem(client.post("/api/datasets", json={"name": "x", "items": resolved}), 422)
        assert ["body", "items", *where.split(".")] in [e["loc"] for e in body["errors"]]
        dataset = create(system, people.alice)
        assert_problem(client.patch(f"/api/datasets/{dataset['id']}", json={"items": resolved}), 422)
        assert client.get(f"/api/datasets/{dataset['id']}").json() == dataset
    assert total(system, people.alice) == before + 1


@pytest.mark.parametrize("items", [
    {"oss": ["https://a.example/x.png"] * 1001}, {"images": list(range(1, 502))}, {"choices": list(range(1, 102))},
    {"images": ["1"]}, {"images": [True]}, {"images": [0]}, {"images": [2**53]}, {"oss": [5]},
    {"oss": ["https://a.example/" + "x" * 2048]}, {"videos": []}, {"images": None},
    {"repeats": 0}, {"repeats": 101}, {"repeats": "3"}, {"repeats": 2.5}, {"repeats": True}, {"repeats": None},
])
def test_item_counts_and_shapes_are_bounded(system: System, people: People, items: dict) -> None:
    before = total(system, people.alice)
    with client_of(system, people.alice) as client:
        assert_problem(client.post("/api/datasets", json={"name": "x", "items": items}), 422)
    assert total(system, people.alice) == before


def test_a_deleted_image_can_no_longer_be_named(system: System, people: People) -> None:
    image = upload_image(system, people.alice)
    delete(system, people.alice, f"/api/images/{image['id']}")
    with client_of(system, people.alice) as client:
        assert_problem(client.post("/api/datasets", json={"name": "x", "items": {"images": [image["id"]]}}), 422)


def test_an_admin_editing_someone_elses_dataset_sees_with_the_owners_eyes(system: System, people: People,
                                                                           pictures: dict) -> None:
    dataset = create(system, people.alice)
    with client_of(system, people.admin) as admin:
        refused = admin.patch(f"/api/datasets/{dataset['id']}", json={"items": {"images": [pictures["admin_private"]]}})
        assert_problem(refused, 422)
        allowed = admin.patch(f"/api/datasets/{dataset['id']}", json={"items": {"images": [pictures["alice_private"]]}})
        assert allowed.status_code == 200 and allowed.json()["items"]["images"] == [pictures["alice_private"]]
        assert allowed.json()["user_id"] == people.alice.id


def test_visibility_and_who_may_change(system: System, people: People) -> None:
    private = create(system, people.alice)
    public = create(system, people.alice, public=True)
    with client_of(system, people.alice) as alice:  # Alice's read waits for her writes: the projection has them
        assert alice.get(f"/api/datasets/{public['id']}").status_code == 200
    with client_of(system, people.bob) as bob, system.client() as anonymous:
        for client in (bob, anonymous):
            assert_problem(client.get(f"/api/datasets/{private['id']}"), 404)
            assert client.get(f"/api/datasets/{public['id']}").status_code == 200
            ids = [d["id"] for d in client.get("/api/datasets", params={"pageSize": 100}).json()["list"]]
            assert public["id"] in ids and private["id"] not in ids
        assert_problem(bob.patch(f"/api/datasets/{private['id']}", json={"name": "x"}), 404)
        assert_problem(bob.delete(f"/api/dataset/{private['id']}"), 404)
        assert_problem(bob.patch(f"/api/dataset/{public['id']}", json={"name": "x"}), 403)
        assert_problem(bob.delete(f"/api/datasets/{public['id']}"), 403)
        assert_problem(anonymous.post("/api/datasets", json={"name": "x"}), 401)
        assert_problem(anonymous.delete(f"/api/datasets/{public['id']}"), 401)
    with client_of(system, people.admin) as admin:
        assert admin.get(f"/api/datasets/{private['id']}").status_code == 200
        assert admin.patch(f"/api/datasets/{private['id']}", json={"public": True}).status_code == 200


def test_items_name_only_what_the_reader_may_see(system: System, people: People, pictures: dict) -> None:
    alice, bob = people.alice, people.bob
    alices = upload_image(system, alice, public=True)["id"]  # made private below: then hidden from bob too
    gone = upload_image(system, bob, public=True)["id"]  # deleted below
    items = {"oss": [BLOB_URL], "images": [pictures["bob_private"], pictures["bob_public"], alices, gone],
             "choices": [pictures["bob_private_choice"], pictures["bob_public_choice"]]}
    dataset = create(system, bob, public=True, items=items)
    with client_of(system, alice) as client:
        hidden = client.patch(f"/api/images/{alices}", json={"public": False})
        assert hidden.status_code == 200, hidden.text
    seq = delete(system, bob, f"/api/images/{gone}")  # after the change above: reads wait for both

    def seen_by(who: Person | None) -> list[dict]:
        with client_of(system, who) as client:
            wait = {"X-Event-Sequence": seq}
            detail = client.get(f"/api/datasets/{dataset['id']}", headers=wait)
            alias = client.get(f"/api/dataset/{dataset['id']}", headers=wait)
            page = client.get("/api/datasets", params={"user": bob.id, "pageSize": 100}, headers=wait).json()
        assert detail.status_code == 200 and alias.status_code == 200, detail.text
        return [detail.json()["items"], alias.json()["items"],
                *[d["items"] for d in page["list"] if d["id"] == dataset["id"]]]

    expected = [
        (None, [pictures["bob_public"]], [pictures["bob_public_choice"]]),
        (alice, [pictures["bob_public"], alices], [pictures["bob_public_choice"]]),  # her own image, not bob's
        (bob, [pictures["bob_private"], pictures["bob_public"], gone], items["choices"]),  # own; deleted kept
        (people.admin, items["images"], items["choices"]),
    ]
    for who, images, choices in expected:
        seen = seen_by(who)
        assert len(seen) == 3, who
        for shown in seen:
            assert shown == {"oss": [BLOB_URL], "images": images, "choices": choices, "repeats": 1}, (who, shown)


def test_every_route_answers_under_the_alias(system: System, people: People, pictures: dict) -> None:
    dataset = create(system, people.alice, base="/api/dataset", items={"images": [pictures["bob_public"]]})
    with client_of(system, people.alice) as client:
        assert client.get(f"/api/dataset/{dataset['id']}").json() == dataset
        listed = client.get("/api/dataset", params={"q": dataset["name"]}).json()
        assert [d["id"] for d in listed["list"]] == [dataset["id"]]
        changed = client.patch(f"/api/dataset/{dataset['id']}", json={"name": "renamed", "items": {}})
        assert changed.status_code == 200
        assert (changed.json()["name"], changed.json()["items"]["images"]) == ("renamed", [])
        assert client.get(f"/api/datasets/{dataset['id']}").json() == changed.json()
        assert client.delete(f"/api/dataset/{dataset['id']}").status_code == 204
        assert_problem(client.get(f"/api/dataset/{dataset['id']}"), 404)
        events = client.get(f"/api/dataset/{dataset['id']}/events").json()
        assert [e["type"] for e in events] == ["DatasetCreated", "DatasetRenamed", "DatasetItemsReplaced",
                                               "DatasetDeleted"]


@pytest.mark.parametrize("payload", [{"id": 1}, {"user_id": 1}, {"created_at": "2020-01-01T00:00:00Z"},
                                     {"name": None}, {"items": None}, {"public": 1}, {"name": "   "},
                                     {"items": {"oss": [], "owner": 1}}])
def test_read_only_unknown_or_null_fields_answer_422_and_change_nothing(system: System, people: People,
                                                                       payload: dict) -> None:
    dataset = create(system, people.alice)
    with client_of(system, people.alice) as client:
        assert_problem(client.patch(f"/api/datasets/{dataset['id']}", json=payload), 422)
        assert client.get(f"/api/datasets/{dataset['id']}").json() == dataset
        before = total(system, people.alice)
        assert_problem(client.post("/api/datasets", json={"name": "x", **payload}), 422)
        assert total(system, people.alice) == before


def test_lists_filter_by_user_public_date_and_name(system: System, people: People) -> None:
    marker = unique("lst")
    mine = create(system, people.alice, name=f"{marker} mine")
    shared = create(system, people.bob, name=f"{marker} shared", public=True)
    hidden = create(system, people.bob, name=f"{marker} hidden")
    with client_of(system, people.alice) as client:
        def ids(**params: QueryValue) -> list[int]:
            answer = client.get("/api/datasets", params={"q": marker, **params})
            assert answer.status_code == 200, answer.text
            return [d["id"] for d in answer.json()["list"]]

        assert ids() == [shared["id"], mine["id"]]
        assert ids(user=people.bob.id) == [shared["id"]]
        assert ids(public="false") == [mine["id"]]
        assert ids(date=f"{datetime.now(UTC):%Y%m}") == [shared["id"], mine["id"]]
        assert ids(date="1999") == []
        assert ids(sort="date+") == [mine["id"], shared["id"]]
        for bad in ({"user": "me"}, {"status": "ready"}, {"date": "x"}):
            body = assert_problem(client.get("/api/dataset", params=bad), 422)
            assert next(iter(bad)) in body["detail"] + json.dumps(body.get("errors"))
    with client_of(system, people.admin) as admin:
        assert hidden["id"] in [d["id"] for d in admin.get("/api/datasets", params={"q": marker}).json()["list"]]


def test_a_repeat_after_delete_answers_the_first_answer(system: System, people: People) -> None:
    key, body = uuid.uuid4().hex, {"name": unique(), "items": {"oss": ["https://cdn.example.com/a.png"]}}
    with client_of(system, people.alice) as alice:
        first = alice.post("/api/datasets", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == 201
        assert alice.patch(f"/api/datasets/{first.json()['id']}", json={"public": True}).status_code == 200
        assert alice.delete(f"/api/datasets/{first.json()['id']}").status_code == 204
        again = alice.post("/api/datasets", json=body, headers={"Idempotency-Key": key})
        assert again.status_code == 201 and again.json() == first.json()
        assert alice.get(f"/api/datasets/{first.json()['id']}").status_code == 404
    with client_of(system, people.bob) as bob:  # Alice's key is a new key for Bob
        mine = bob.post("/api/datasets", json=body, headers={"Idempotency-Key": key})
        assert mine.status_code == 201 and mine.json()["user_id"] == people.bob.id
