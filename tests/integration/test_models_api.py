"""Models over HTTP: created in status `initial` with their training data, tags shared with images by name, a
cover image, visibility (the training lifecycle: test_model_training.py)."""

from __future__ import annotations

import concurrent.futures
import uuid

import pytest

from tests.catalog_accounts import People, Person, QueryValue, assert_problem, client_of
from tests.catalog_objects import create_choice, delete, png_bytes, upload_image
from tests.system import System

OSS = "https://cdn.example.com/train/1.png"


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create(system: System, who: Person, **fields: object) -> dict:
    body = {"name": unique(), "type": "lora", "base_model": "SD1.5", "data": {"oss": [OSS]}, **fields}
    with client_of(system, who) as client:
        answer = client.post("/api/models", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def get(system: System, who: Person | None, model_id: int, after: str = "0") -> dict:
    with client_of(system, who) as client:
        answer = client.get(f"/api/models/{model_id}", headers={"X-Event-Sequence": after})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def listed(system: System, who: Person | None, **params: QueryValue) -> list[int]:
    with client_of(system, who) as client:
        answer = client.get("/api/models", params={"pageSize": 100, **params})
        assert answer.status_code == 200, answer.text
        return [m["id"] for m in answer.json()["list"]]


def test_create_answers_an_initial_private_model_with_its_training_data(system: System, people: People) -> None:
    image = upload_image(system, people.alice, public=False)
    tag = unique("Style")
    with client_of(system, people.alice) as client:
        answer = client.post("/api/models", json={
            "name": " my lora ", "type": "lora", "base_model": "SD2", "trigger_words": "sks person",
            "tags": [tag, "portrait"], "data": {"oss": [OSS], "images": [image["id"]]}})
        assert answer.status_code == 201, answer.text
        model = answer.json()
        assert {k: model[k] for k in ("name", "type", "base_model", "trigger_words", "status", "progress",
                                       "model_path", "image", "image_id", "public", "user_id", "source")} == {
            "name": "my lora", "type": "lora", "base_model": "SD2", "trigger_words": "sks person",
            "status": "initial", "progress": 0, "model_path": None, "image": None, "image_id": None,
            "public": False, "user_id": people.alice.id, "source": None}
        assert model["tags"] == [tag, "portrait"]
        assert model["dataset"] == {"oss": [OSS], "images": [image["id"]], "choices": [], "repeats": 1}
        assert answer.headers["Location"] == f"/api/models/{model['id']}"
        assert client.get(f"/api/models/{model['id']}").json() == model
        tags = client.get("/api/tags", params={"q": tag}).json()["list"]
        assert [t["name"] for t in tags] == [tag]  # created on first use


@pytest.mark.parametrize("change", [
    {"type": "LoRa2"}, {"type": "SD2"}, {"base_model": "SD3"}, {"base_model": "sd 1.5"}, {"type": " lora"},
    {"type": None}, {"data": {}},
    {"data": {"oss": [], "images": [], "choices": []}}, {"data": {"oss": ["ftp://x.example/a.png"]}},
    {"data": {"images": [123456789]}}, {"status": "ready"}, {"status": "initial"}, {"progress": 50},
    {"model_path": "/x"}, {"user_id": 1}, {"id": 5}, {"image": "x"}, {"tags": ["12345"]}, {"tags": ["a,b"]},
    {"tags": [f"t{i}" for i in range(21)]}, {"source": 123456789}, {"trigger_words": "a\x00b"}, {"name": ""},
    {"public": "true"}, {"dataset": {"oss": [OSS]}},
])
def test_create_refuses_bad_fields_and_stores_nothing(system: System, people: People, change: dict) -> None:
    body = {"name": unique(), "type": "lora", "base_model": "SD1.5", "data": {"oss": [OSS]}, **change}
    if change.get("type") is None and "type" in change:
        del body["type"]
    with client_of(system, people.alice) as client:
        before = client.get("/api/models").json()["total"]
        tags_before = client.get("/api/tags").json()["total"]
        assert_problem(client.post("/api/models", json=body), 422)
        assert client.get("/api/models").json()["total"] == before
        assert client.get("/api/tags").json()["total"] == tags_before


@pytest.mark.parametrize(("sent", "stored"), [
    ({"type": "LORA", "base_model": "sd1.5"}, ("lora", "SD1.5")),
    ({"type": "Ckp", "base_model": "sd2"}, ("ckp", "SD2")),
    ({"type": "HYPER", "base_model": "Sd1.5"}, ("hyper", "SD1.5")),
    ({"type": "tI", "base_model": "SD2"}, ("ti", "SD2")),
])
def test_type_and_base_model_take_any_case_and_keep_the_canonical_spelling(system: System, people: People,
                                                                           sent: dict, stored: tuple) -> None:
    model = create(system, people.alice, **sent)
    assert (model["type"], model["base_model"]) == stored
    assert get(system, people.alice, model["id"])["type"] == stored[0]
    assert model["id"] in listed(system, people.alice, type=stored[0], base_model=stored[1], user=people.alice.id)


def test_tags_are_shared_by_name_ignoring_case_in_the_order_given(system: System, people: People) -> None:
    name = unique("Cat")
    with client_of(system, people.bob) as bob:
        existing = bob.post("/api/tags", json={"name": name}).json()
    model = create(system, people.alice, tags=[name.upper(), "  fresh  ", name.lower(), "Fresh"])
    assert model["tags"] == [name, "fresh"]
    with client_of(system, people.alice) as client:
        assert [m["id"] for m in client.get("/api/models", params={"tag": existing["id"]}).json()["list"]] == [
            model["id"]]
    with client_of(system, people.bob) as bob:  # the tag's creator (nothing public carries it: not listed to all)
        assert bob.get("/api/tags", params={"q": name}).json()["total"] == 1


def test_concurrent_creates_with_one_new_tag_all_succeed_with_one_tag(system: System, people: People) -> None:
    name = unique("race")

    def make(_: int) -> int:
        with client_of(system, people.alice) as client:
            return client.post("/api/models", json={"name": "r", "type": "ti", "base_model": "SD1.5",
                                                    "tags": [name], "data": {"oss": [OSS]}}).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert sorted(pool.map(make, range(6))) == [201] * 6
    with client_of(system, people.alice) as client:
        assert client.get("/api/tags", params={"q": name}).json()["total"] == 1
        assert client.get("/api/models", params={"tag": name}).json()["total"] == 6


def test_patch_changes_the_fields_sent_and_a_cover_the_owner_can_see(system: System, people: People) -> None:
    own = upload_image(system, people.alice, public=False)
    others_public = upload_image(system, people.bob, public=True)
    model = create(system, people.alice, tags=["one"])
    with client_of(system, people.alice) as client:
        changed = client.patch(f"/api/models/{model['id']}", json={
            "name": "renamed", "trigger_words": "zwx", "tags": ["two", "three"], "public": True,
            "image": own["id"]})
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert (body["name"], body["trigger_words"], body["tags"], body["public"]) == ("renamed", "zwx",
                                                                                        ["two", "three"], True)
        assert (body["image_id"], body["image"]) == (own["id"], own["url"])
        assert body["dataset"] == model["dataset"] and body["status"] == "initial"
        assert client.get(f"/api/models/{model['id']}").json() == body
        second = client.patch(f"/api/models/{model['id']}", json={"image": others_public["id"]}).json()
        assert (second["image"], second["name"]) == (others_public["url"], "renamed")
        removed = client.patch(f"/api/models/{model['id']}", json={"image": None}).json()
        assert (removed["image"], removed["image_id"]) == (None, None)
        events = [e["type"] for e in client.get(f"/api/models/{model['id']}/events").json()]
        assert events == ["ModelCreated", "ModelTagsChanged", "ModelRenamed", "ModelTriggerWordsChanged",
                          "ModelVisibilityChanged", "ModelCoverChosen", "ModelCoverChosen", "ModelCoverChosen"]


@pytest.mark.parametrize(("payload", "words"), [
    ({"status": "initial"}, "ready"), ({"status": "success"}, "ready"), ({"status": None}, "null"),
    ({"progress": 100}, "read-only"), ({"model_path": "s3://x"}, "read-only"), ({"error": "x"}, "read-only"),
    ({"name": "x", "status": "running"}, "ready"), ({"name": "x", "status": "canceled"}, "alone"),
    ({"training": {"rank": 0}}, "training"), ({"status": "ready", "training": {"steps": 0}}, "steps"),
    ({"name": None}, "null"), ({"tags": None}, "null"), ({"public": None}, "null"),
    ({"user_id": 1}, "user_id"), ({"type": "ckp"}, "type"), ({"base_model": "SD2"}, "base_model"),
    ({"data": {"oss": [OSS]}}, "data"), ({"source": 5}, "source"), ({"created_at": "2020-01-01T00:00:00Z"}, ""),
    ({"image": 123456789}, "image"), ({"tags": ["1"]}, "digits"),
])
def test_patch_refuses_status_read_only_and_bad_fields_and_changes_nothing(system: System, people: People,
                                                                          payload: dict, words: str) -> None:
    model = create(system, people.alice)
    with client_of(system, people.alice) as client:
        body = assert_problem(client.patch(f"/api/models/{model['id']}", json=payload), 422)
        assert words in body["detail"] + str(body.get("errors"))
        assert client.get(f"/api/models/{model['id']}").json() == model
        assert len(client.get(f"/api/models/{model['id']}/events").json()) == 1


def test_a_cover_must_be_visible_to_the_owner_and_hides_when_it_no_longer_is(system: System,
                                                                              people: People) -> None:
    hidden = upload_image(system, people.bob, public=False)
    shared = upload_image(system, people.bob, public=True)
    model = create(system, people.alice, public=True)
    with client_of(system, people.alice) as alice:
        assert_problem(alice.patch(f"/api/models/{model['id']}", json={"image": hidden["id"]}), 422)
        assert alice.patch(f"/api/models/{model['id']}", json={"image": shared["id"]}).status_code == 200
    with client_of(system, people.bob) as bob:
        made_private = bob.patch(f"/api/images/{shared['id']}", json={"public": False})
        assert made_private.status_code == 200
    seq = made_private.headers["X-Event-Sequence"]
    assert get(system, people.alice, model["id"], after=seq)["image"] is None
    assert get(system, None, model["id"], after=seq)["image"] is None
    assert get(system, people.bob, model["id"], after=seq)["image"] == shared["url"]  # bob may see his image
    seq = delete(system, people.bob, f"/api/images/{shared['id']}")
    gone = get(system, people.alice, model["id"], after=seq)  # the model's owner keeps the id of a deleted cover
    assert (gone["image"], gone["image_id"]) == (None, shared["id"])
    gone = get(system, people.bob, model["id"], after=seq)  # others see no cover at all
    assert (gone["image"], gone["image_id"]) == (None, None)


def test_hidden_cover_source_and_training_items_are_not_named_to_readers_who_may_not_see_them(
        system: System, people: People) -> None:
    bob = people.bob
    first, hidden, last = (upload_image(system, bob, public=p)["id"] for p in (True, False, True))
    open_choice = create_choice(system, bob, public=True)["id"]
    closed_choice = create_choice(system, bob, public=False)["id"]
    source = create(system, bob)  # private
    body = {"name": unique(), "type": "lora", "base_model": "SD1.5", "public": True, "source": source["id"],
            "data": {"oss": [OSS], "images": [first, hidden, last], "choices": [closed_choice, open_choice],
                     "repeats": 1}}
    with client_of(system, bob) as client:
        made = client.post("/api/models", json=body)
        assert made.status_code == 201, made.text
        covered = client.patch(f"/api/models/{made.json()['id']}", json={"image": hidden})
        assert covered.status_code == 200, covered.text
    model_id, seq = made.json()["id"], covered.headers["X-Event-Sequence"]

    def seen_by(who: Person | None, after: str) -> list[dict]:
        detail = get(system, who, model_id, after=after)
        with client_of(system, who) as client:
            page = client.get("/api/models", params={"user": bob.id, "pageSize": 100},
                              headers={"X-Event-Sequence": after}).json()
        [in_list] = [m for m in page["list"] if m["id"] == model_id]
        return [detail, in_list]

    for who in (None, people.alice):  # anonymous, another user: what is hidden from them is not named
        for model in seen_by(who, seq):
            assert (model["image"], model["image_id"], model["source"]) == (None, None, None), model
            assert model["dataset"] == {"oss": [OSS], "images": [first, last], "choices": [open_choice],
                                        "repeats": 1}, model
    for who in (bob, people.admin):  # the owner and admins see all of it, in the order given
        for model in seen_by(who, seq):
            assert (model["image_id"], model["source"]) == (hidden, source["id"]) and model["image"], model
            assert model["dataset"] == body["data"], model
    # Deleted since: still named to the owner and admins (the record of what was given), to nobody else.
    seq = delete(system, bob, f"/api/images/{last}")
    for model in seen_by(None, seq):
        assert model["dataset"]["images"] == [first], model
    for who in (bob, people.admin):
        for model in seen_by(who, seq):
            assert model["dataset"]["images"] == [first, hidden, last], model


def test_who_may_see_and_change_a_model(system: System, people: People) -> None:
    private = create(system, people.alice)
    public = create(system, people.alice, public=True)
    with client_of(system, people.bob) as bob, system.client() as anonymous:
        for client in (bob, anonymous):
            assert_problem(client.get(f"/api/models/{private['id']}"), 404)
            assert client.get(f"/api/models/{public['id']}").status_code == 200
        assert_problem(bob.patch(f"/api/models/{private['id']}", json={"name": "x"}), 404)
        assert_problem(bob.delete(f"/api/models/{private['id']}"), 404)
        assert_problem(bob.patch(f"/api/models/{public['id']}", json={"name": "x"}), 403)
        assert_problem(bob.delete(f"/api/models/{public['id']}"), 403)
        assert_problem(bob.get(f"/api/models/{public['id']}/events"), 404)
        assert_problem(anonymous.post("/api/models", json={"name": "x", "type": "lora", "base_model": "SD2",
                                                           "data": {"oss": [OSS]}}), 401)
        assert_problem(anonymous.patch(f"/api/models/{public['id']}", json={"name": "x"}), 401)
        assert_problem(anonymous.delete(f"/api/models/{public['id']}"), 401)
    assert private["id"] not in listed(system, people.bob) and public["id"] in listed(system, people.bob)
    assert private["id"] not in listed(system, None) and public["id"] in listed(system, None)
    with client_of(system, people.admin) as admin:
        assert admin.get(f"/api/models/{private['id']}").status_code == 200
        assert admin.get(f"/api/models/{private['id']}/events").status_code == 200
        assert admin.patch(f"/api/models/{private['id']}", json={"name": "by admin"}).json()["user_id"] == \
            people.alice.id
        assert admin.delete(f"/api/models/{private['id']}").status_code == 204


def test_source_must_be_a_model_the_owner_can_see(system: System, people: People) -> None:
    theirs_private = create(system, people.bob)
    theirs_public = create(system, people.bob, public=True)
    based = create(system, people.alice, source=theirs_public["id"], type="ckp")
    assert based["source"] == theirs_public["id"]
    with client_of(system, people.alice) as client:
        body = assert_problem(client.post("/api/models", json={
            "name": "x", "type": "lora", "base_model": "SD1.5", "source": theirs_private["id"],
            "data": {"oss": [OSS]}}), 422)
        assert ["body", "source"] in [e["loc"] for e in body["errors"]]


def test_deleting_a_tag_removes_it_from_models_and_images(system: System, people: People) -> None:
    name = unique("gone")
    model = create(system, people.alice, tags=[name, "kept"])
    with client_of(system, people.alice) as client:
        image = client.post("/api/images", files={"file": ("p.png", png_bytes(), "image/png")},
                            data={"tags": name}).json()
        tag_id = client.get("/api/tags", params={"q": name}).json()["list"][0]["id"]
        assert client.get("/api/models", params={"tag": tag_id}).json()["total"] == 1
        assert client.get("/api/images", params={"tag": tag_id}).json()["total"] == 1
        renamed = client.patch(f"/api/tags/{tag_id}", json={"name": f"{name}-2"})
        assert renamed.status_code == 200, renamed.text
        assert client.get(f"/api/models/{model['id']}").json()["tags"] == [f"{name}-2", "kept"]
        assert client.delete(f"/api/tags/{tag_id}").status_code == 204
        assert client.get(f"/api/models/{model['id']}").json()["tags"] == ["kept"]
        assert client.get(f"/api/images/{image['id']}").json()["tags"] == []
        assert client.get("/api/models", params={"tag": tag_id}).json()["total"] == 0
        assert client.get("/api/images", params={"tag": tag_id}).json()["total"] == 0
        # The command side answers the same: a deleted tag no longer shows.
        patched = client.patch(f"/api/models/{model['id']}", json={"trigger_words": "t"}).json()
        assert patched["tags"] == ["kept"]


def test_list_filters(system: System, people: People) -> None:
    marker = unique("flt")
    lora = create(system, people.alice, name=f"{marker} lora", tags=[f"{marker}-a"], public=True)
    ckp = create(system, people.alice, name=f"{marker} ckp", type="ckp", base_model="SD2",
                 tags=[f"{marker}-a", f"{marker}-b"])
    words = create(system, people.bob, name="plain", trigger_words=f"{marker} sks", type="hyper", public=True)
    hidden = create(system, people.bob, name=f"{marker} hidden")
    everyone = {lora["id"], ckp["id"], words["id"]}
    assert set(listed(system, people.alice, q=marker)) == everyone
    assert listed(system, people.alice, q=marker, sort="date+") == [lora["id"], ckp["id"], words["id"]]
    assert listed(system, people.alice, q=marker, type="ckp,hyper") == [words["id"], ckp["id"]]
    assert listed(system, people.alice, q=marker, base_model="SD2") == [ckp["id"]]
    assert listed(system, people.alice, q=marker, status="initial") == [words["id"], ckp["id"], lora["id"]]
    assert listed(system, people.alice, q=marker, status="running") == []
    assert listed(system, people.alice, q=marker, user=people.bob.id) == [words["id"]]
    assert listed(system, people.alice, q=marker, public="false") == [ckp["id"]]
    assert listed(system, people.alice, q=marker, public="No") == [ckp["id"]]  # an upload's spellings too
    assert listed(system, people.alice, q=marker, public="on,YES") == [words["id"], lora["id"]]
    assert listed(system, people.alice, tag=f"{marker}-a") == [ckp["id"], lora["id"]]
    assert listed(system, people.alice, tag=f"{marker}-A,{marker}-b") == [ckp["id"], lora["id"]]
    with client_of(system, people.alice) as client:
        both = client.get(f"/api/models?tag={marker}-a&tag={marker}-b").json()
        assert [m["id"] for m in both["list"]] == [ckp["id"]]
    assert listed(system, people.alice, tag="no-such-tag-anywhere") == []
    assert set(listed(system, people.admin, q=marker)) == everyone | {hidden["id"]}
    assert listed(system, None, q=marker) == [words["id"], lora["id"]]


@pytest.mark.parametrize("params", [{"type": "LORA2"}, {"status": "done"}, {"base_model": "SD3"},
                                    {"public": "1x"}, {"user": "x"}, {"date": "2024-01"}, {"sort": "likes"},
                                    {"like": "1"}, {"choice": "1"}])
def test_malformed_or_unknown_list_parameters_answer_422(system: System, params: dict) -> None:
    with system.client() as client:
        body = assert_problem(client.get("/api/models", params=params), 422)
        assert next(iter(params)) in body["detail"] + str(body.get("errors"))


def test_delete_then_the_model_is_gone_but_its_history_stays(system: System, people: People) -> None:
    model = create(system, people.alice)
    with client_of(system, people.alice) as client:
        deleted = client.delete(f"/api/models/{model['id']}")
        assert deleted.status_code == 204 and int(deleted.headers["X-Event-Sequence"]) > 0
        assert_problem(client.get(f"/api/models/{model['id']}"), 404)
        assert_problem(client.patch(f"/api/models/{model['id']}", json={"name": "x"}), 404)
        assert_problem(client.delete(f"/api/models/{model['id']}"), 404)
        assert model["id"] not in listed(system, people.alice)
        assert [e["type"] for e in client.get(f"/api/models/{model['id']}/events").json()] == [
            "ModelCreated", "ModelDeleted"]


def test_the_same_idempotency_key_creates_one_model(system: System, people: People) -> None:
    key, name = uuid.uuid4().hex, unique()
    body = {"name": name, "type": "lora", "base_model": "SD1.5", "tags": [unique("idem")],
            "data": {"oss": [OSS]}}
    with client_of(system, people.alice) as client:
        first = client.post("/api/models", json=body, headers={"Idempotency-Key": key})
        again = client.post("/api/models", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert client.get("/api/models", params={"q": name}).json()["total"] == 1
