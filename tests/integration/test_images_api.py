"""Images over HTTP: upload checks, detail, change, delete, lists, blob serving and the audit trail."""

from __future__ import annotations

import io
import struct
import uuid
import zlib

import psycopg
import pytest
from PIL import Image

from tests.accounts import new_account
from tests.catalog_accounts import People, Person, QueryValue, assert_problem, client_of
from tests.image_files import SECRET, jpeg_with_gps, picture, upload
from tests.image_support import blob_files, eventually, log_end, wait_projected
from tests.system import System


def unique(prefix: str = "img") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_image(system: System, who: Person, **fields: str) -> dict:
    with client_of(system, who) as client:
        answer = upload(client, fields=fields)
        assert answer.status_code == 201, answer.text
    wait_projected(system, answer.headers["X-Event-Sequence"])
    return dict(answer.json())


def listed(system: System, who: Person | None, **params: QueryValue) -> list[int]:
    with client_of(system, who) as client:
        answer = client.get("/api/images", params={"pageSize": 100, **params})
        assert answer.status_code == 200, answer.text
        return [i["id"] for i in answer.json()["list"]]


# Upload

def test_upload_answers_the_image_with_its_size_tags_and_urls_readable_at_once(system: System,
                                                                               people: People) -> None:
    tag = unique("sun")
    with client_of(system, people.alice) as client:
        answer = upload(client, picture(64, 48), fields={"name": " Dusk ", "prompt": "a sunset", "tags": f"{tag}, sky"})
        assert answer.status_code == 201, answer.text
        image = answer.json()
        assert (image["width"], image["height"], image["name"], image["prompt"]) == (64, 48, "Dusk", "a sunset")
        assert image["tags"] == [tag, "sky"] and image["public"] is True and image["likes"] == 0
        assert image["user_id"] == people.alice.id and image["user"] == {"id": people.alice.id,
                                                                          "name": people.alice.name}
        assert answer.headers["Location"] == f"/api/images/{image['id']}"
        assert int(answer.headers["X-Event-Sequence"]) > 0
        assert client.get(f"/api/images/{image['id']}").json() == image
        stored = client.get(image["url"])
        assert stored.status_code == 200 and stored.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(stored.content)).size == (64, 48)
        thumb = client.get(image["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"


def test_an_unknown_tag_name_is_created_once_and_then_reused(system: System, people: People) -> None:
    tag = unique("Cat")
    first = new_image(system, people.alice, tags=tag)
    second = new_image(system, people.bob, tags=tag.upper())
    assert first["tags"] == [tag] and second["tags"] == [tag]  # the tag's own spelling
    with client_of(system, people.alice) as client:
        tags = client.get("/api/tags", params={"q": tag}).json()
        assert tags["total"] == 1 and tags["list"][0]["name"] == tag
        tag_id = tags["list"][0]["id"]
    assert set(listed(system, None, tag=tag)) == {first["id"], second["id"]}
    assert set(listed(system, None, tag=str(tag_id))) == {first["id"], second["id"]}


def test_tags_may_be_comma_separated_and_repeated_and_repeats_count_once(system: System, people: People) -> None:
    a, b, c = unique("a"), unique("b"), unique("c")
    with client_of(system, people.alice) as client:
        answer = upload(client, fields={"tags": [f"{a},{b}", c, a.upper()]})
        assert answer.status_code == 201, answer.text
        assert answer.json()["tags"] == [a, b, c]


def test_the_name_defaults_to_the_files_name_and_public_can_be_false(system: System, people: People) -> None:
    with client_of(system, people.alice) as client:
        answer = upload(client, filename="holiday photo.png", fields={"public": "false"})
        assert answer.status_code == 201, answer.text
        assert answer.json()["name"] == "holiday photo" and answer.json()["public"] is False


@pytest.mark.parametrize("name", ["", "   "])
def test_a_blank_name_field_is_no_name_and_the_files_name_stands_in(system: System, people: People,
                                                                    name: str) -> None:
    with client_of(system, people.alice) as client:
        answer = upload(client, filename="sunset.png", fields={"name": name})
        assert answer.status_code == 201, answer.text
        assert answer.json()["name"] == "sunset"
        events = log_end(system)
        assert "send a `name` field" in assert_problem(upload(client, filename=" .png", fields={"name": name}),
                                                       422)["detail"]
        assert log_end(system) == events


def test_location_metadata_is_stripped_from_what_is_stored(system: System, people: People) -> None:
    original = jpeg_with_gps()
    assert SECRET.encode() in original
    with client_of(system, people.alice) as client:
        image = upload(client, original, "trip.jpg", "image/jpeg").json()
        stored = client.get(image["url"])
    assert stored.headers["content-type"] == "image/jpeg"
    assert SECRET.encode() not in stored.content
    exif = Image.open(io.BytesIO(stored.content)).getexif()
    assert not exif.get_ifd(0x8825) and SECRET not in str(dict(exif))


def truncated_png() -> bytes:
    return picture(64, 64)[:-40]


def bomb_png(side: int = 60000) -> bytes:
    """A valid PNG header claiming side x side pixels (3.6 gigapixels by default) in a few hundred bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(
        b"IEND", b"")


@pytest.mark.parametrize(("data", "filename", "status"), [
    (b"just some text, renamed", "notes.png", 422),
    (truncated_png(), "cut.png", 422),
    (bomb_png(), "bomb.png", 413),
    (b"", "empty.png", 422),
    (picture(8, 8, "GIF"), "anim.gif", 422),
])
def test_a_bad_file_is_refused_and_nothing_is_stored(system: System, people: People, data: bytes, filename: str,
                                                      status: int) -> None:
    files, events = blob_files(system), log_end(system)
    with client_of(system, people.alice) as client:
        assert_problem(upload(client, data, filename, fields={"tags": unique("never")}), status)
    assert blob_files(system) == files
    assert log_end(system) == events


def test_a_file_over_the_size_limit_is_413_before_it_is_read(system: System, people: People) -> None:
    events = log_end(system)
    with client_of(system, people.alice) as client:
        problem = assert_problem(upload(client, b"\0" * (21 * 1024 * 1024)), 413)
    assert log_end(system) == events
    # The documented AIDRAW_UPLOAD_MAX_BYTES, not the body limit with its multipart allowance.
    assert "20971520 bytes" in problem["detail"] and "21037056" not in problem["detail"], problem


@pytest.mark.parametrize("side", [7000, 20000])
def test_too_many_pixels_names_the_configured_limit(system: System, people: People, side: int) -> None:
    with client_of(system, people.alice) as client:
        problem = assert_problem(upload(client, bomb_png(side), "big.png"), 413)
    assert "at most 25000000 are accepted" in problem["detail"], problem
    assert "decompression bomb" not in problem["detail"] and "178956970" not in problem["detail"], problem


@pytest.mark.parametrize("fields", [
    {"bogus": "1"}, {"user_id": "5"}, {"likes": "9"}, {"public": "maybe"}, {"name": "x" * 201},
    {"tags": "12345"}, {"tags": ",".join(f"t{i}" for i in range(21))}, {"prompt": "p" * 4001},
    {"name": ["a", "b"]}, {"name": "bad\x00name"},
])
def test_bad_fields_are_422_and_nothing_is_stored(system: System, people: People, fields: dict) -> None:
    files, events = blob_files(system), log_end(system)
    with client_of(system, people.alice) as client:
        assert_problem(upload(client, fields=fields), 422)
    assert blob_files(system) == files and log_end(system) == events


def test_malformed_requests_are_422_never_500(system: System, people: People) -> None:
    with client_of(system, people.alice) as client:
        # JSON is a generation request (docs/tasks.md): one without a prompt, or with a field it does not know,
        # is 422; a multipart body without its file too.
        assert_problem(client.post("/api/images", json={"name": "no prompt"}), 422)
        assert_problem(client.post("/api/images", json={"prompt": "a cat", "file": "x"}), 422)
        assert_problem(client.post("/api/images", data={"name": "no file"}), 422)
        assert_problem(client.post("/api/images", files=[("file", ("a.png", picture(), "image/png")),
                                                         ("file", ("b.png", picture(), "image/png"))]), 422)
        assert_problem(client.post("/api/images", content=b"--x\r\nnot multipart",
                                   headers={"content-type": "multipart/form-data; boundary=x"}), 422)
        assert_problem(client.post("/api/images", content=b"abc",
                                   headers={"content-type": "multipart/form-data"}), 422)


def test_uploads_need_a_user(system: System) -> None:
    events = log_end(system)
    with system.client() as anonymous:
        assert_problem(upload(anonymous), 401)
    assert log_end(system) == events


def test_the_same_idempotency_key_uploads_once(system: System, people: People) -> None:
    key, data = uuid.uuid4().hex, picture()
    with client_of(system, people.alice) as client:
        first = upload(client, data, fields={"name": key}, headers={"Idempotency-Key": key})
        second = upload(client, data, fields={"name": key}, headers={"Idempotency-Key": key})
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert client.get("/api/images", params={"q": key}).json()["total"] == 1
    with client_of(system, people.bob) as bob:  # a key is never a way to reach someone else's image
        mine = upload(bob, data, headers={"Idempotency-Key": key})
        assert mine.status_code == 201 and mine.json()["user_id"] == people.bob.id
        assert mine.json()["id"] != first.json()["id"]


# Detail and visibility

def test_a_private_image_is_unknown_to_everyone_but_its_owner_and_admins(system: System, people: People) -> None:
    image = new_image(system, people.alice, public="false")
    for who, status in ((people.alice, 200), (people.admin, 200), (people.bob, 404), (None, 404)):
        with client_of(system, who) as client:
            assert client.get(f"/api/images/{image['id']}").status_code == status
    assert image["id"] in listed(system, people.alice) and image["id"] in listed(system, people.admin)
    assert image["id"] not in listed(system, people.bob) and image["id"] not in listed(system, None)
    assert image["id"] not in listed(system, people.bob, public="false")


@pytest.mark.parametrize("path", ["/api/images/0", "/api/images/-3", "/api/images/abc",
                                  "/api/images/9007199254740993", "/api/images/123456789"])
def test_bad_or_unknown_ids_are_client_errors(system: System, people: People, path: str) -> None:
    with client_of(system, people.alice) as client:
        for answer in (client.get(path), client.patch(path, json={"name": "x"}), client.delete(path),
                       client.put(path + "/like")):
            assert answer.status_code in (404, 422), answer.text


# Change

def test_the_owner_changes_name_tags_and_public_flag(system: System, people: People) -> None:
    image = new_image(system, people.alice, tags="one")
    tag = unique("new")
    with client_of(system, people.alice) as client:
        answer = client.patch(f"/api/images/{image['id']}", json={"name": "Renamed", "tags": [tag, "one"],
                                                                  "public": False})
        assert answer.status_code == 200, answer.text
        changed = answer.json()
        assert (changed["name"], changed["tags"], changed["public"]) == ("Renamed", [tag, "one"], False)
        assert changed["updated_at"] > image["updated_at"] and changed["created_at"] == image["created_at"]
        # The answer comes from the aggregates: all a GET shows but the like count, which no aggregate holds.
        assert changed["likes"] is None and changed["user"] == image["user"]
        assert client.get(f"/api/images/{image['id']}").json() == {**changed, "likes": 0}
        assert client.patch(f"/api/images/{image['id']}", json={"tags": []}).json()["tags"] == []
        same = client.patch(f"/api/images/{image['id']}", json={})
        assert same.status_code == 200 and "X-Event-Sequence" not in same.headers


def test_only_the_owner_or_an_admin_may_change_or_delete(system: System, people: People) -> None:
    public = new_image(system, people.alice)
    private = new_image(system, people.alice, public="false")
    with client_of(system, people.bob) as bob:
        assert_problem(bob.patch(f"/api/images/{public['id']}", json={"name": "mine"}), 403)
        assert_problem(bob.delete(f"/api/images/{public['id']}"), 403)
        assert_problem(bob.patch(f"/api/images/{private['id']}", json={"name": "mine"}), 404)
        assert_problem(bob.delete(f"/api/images/{private['id']}"), 404)
    with system.client() as anonymous:
        assert_problem(anonymous.patch(f"/api/images/{public['id']}", json={"name": "x"}), 401)
        assert_problem(anonymous.delete(f"/api/images/{public['id']}"), 401)
    with client_of(system, people.admin) as admin:
        assert admin.patch(f"/api/images/{private['id']}", json={"name": "moderated"}).status_code == 200
        deleted = admin.delete(f"/api/images/{private['id']}")
        assert deleted.status_code == 204
    wait_projected(system, deleted.headers["X-Event-Sequence"])
    with client_of(system, people.alice) as alice:
        assert alice.get(f"/api/images/{public['id']}").json()["name"] == public["name"]
        assert alice.get(f"/api/images/{private['id']}").status_code == 404


@pytest.mark.parametrize("body", [
    {"likes": 5}, {"user_id": 1}, {"url": "x"}, {"width": 3}, {"id": 9}, {"name": None}, {"public": "yes"},
    {"public": 1}, {"tags": "a,b"}, {"tags": ["12"]}, {"tags": None}, {"name": "x" * 201}, {"name": 7},
    {"name": ""}, {"name": "   "},
])
def test_unknown_read_only_and_malformed_fields_are_422(system: System, people: People, body: dict) -> None:
    image = new_image(system, people.alice)
    with client_of(system, people.alice) as client:
        assert_problem(client.patch(f"/api/images/{image['id']}", json=body), 422)
        assert client.get(f"/api/images/{image['id']}").json() == image


# Delete

def test_a_deleted_image_leaves_lists_likes_and_collections(system: System, people: People) -> None:
    image = new_image(system, people.alice, tags=unique("gone"))
    with client_of(system, people.bob) as bob:
        assert bob.put(f"/api/images/{image['id']}/like").status_code == 204
        choice = bob.post("/api/choices", json={"name": "picks", "items": [{"image_id": image["id"]}]}).json()
    with client_of(system, people.alice) as alice:
        deleted = alice.delete(f"/api/images/{image['id']}")
        assert deleted.status_code == 204 and int(deleted.headers["X-Event-Sequence"]) > 0
        assert_problem(alice.get(f"/api/images/{image['id']}"), 404)
        assert_problem(alice.patch(f"/api/images/{image['id']}", json={"name": "x"}), 404)
        assert_problem(alice.delete(f"/api/images/{image['id']}"), 404)
    wait_projected(system, deleted.headers["X-Event-Sequence"])
    with client_of(system, people.bob) as bob:
        assert image["id"] not in [i["id"] for i in bob.get("/api/images", params={"pageSize": 100}).json()["list"]]
        assert bob.get("/api/images", params={"like": people.bob.id}).json()["total"] == 0
        assert bob.get(f"/api/choices/{choice['id']}").json()["items"] == []
        assert bob.get("/api/images", params={"choice": choice["id"]}).json()["total"] == 0
        assert_problem(bob.put(f"/api/images/{image['id']}/like"), 404)


def test_blobs_are_removed_once_no_image_uses_them(system: System, people: People) -> None:
    data = picture()
    first = new_image_with(system, people.alice, data)
    second = new_image_with(system, people.bob, data)
    assert first["url"] == second["url"]  # content-addressed: the same bytes are stored once
    with client_of(system, people.alice) as alice:
        assert alice.delete(f"/api/images/{first['id']}").status_code == 204
    with system.client() as anonymous:
        assert eventually(lambda: reaper_idle(system))
        assert anonymous.get(second["url"]).status_code == 200
        assert anonymous.get(second["thumbnail_url"]).status_code == 200
    with client_of(system, people.bob) as bob:
        assert bob.delete(f"/api/images/{second['id']}").status_code == 204
    with system.client() as anonymous:
        assert eventually(lambda: anonymous.get(second["url"]).status_code == 404)
        assert eventually(lambda: anonymous.get(second["thumbnail_url"]).status_code == 404)


def new_image_with(system: System, who: Person, data: bytes) -> dict:
    with client_of(system, who) as client:
        answer = upload(client, data)
        assert answer.status_code == 201, answer.text
    wait_projected(system, answer.headers["X-Event-Sequence"])
    return dict(answer.json())


def reaper_idle(system: System) -> bool:
    with psycopg.connect(system.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM public.blob_reap_queue").fetchone()
    return row is not None and row[0] == 0


# Lists

def test_lists_filter_by_user_tag_public_and_text_and_sort(system: System, people: People) -> None:
    marker, red, blue = unique("m"), unique("red"), unique("blue")
    a = new_image(system, people.alice, name=f"{marker} a", tags=red)
    b = new_image(system, people.alice, name=f"{marker} b", tags=f"{red},{blue}", public="false")
    c = new_image(system, people.bob, name=f"{marker} c", tags=blue, prompt="a red fox")
    alice = people.alice
    assert listed(system, alice, q=marker) == [c["id"], b["id"], a["id"]]
    assert listed(system, alice, q=marker, sort="date+") == [a["id"], b["id"], c["id"]]
    assert listed(system, alice, q=marker, user=alice.id) == [b["id"], a["id"]]
    assert listed(system, alice, q=marker, tag=f"{red},{blue}") == [c["id"], b["id"], a["id"]]  # union
    assert listed(system, alice, q=marker, tag=[red, blue]) == [b["id"]]  # intersection
    assert listed(system, alice, q=marker, public="false") == [b["id"]]
    assert listed(system, alice, q=marker, public="true") == [c["id"], a["id"]]
    assert listed(system, None, q=marker) == [c["id"], a["id"]]
    assert listed(system, alice, q=[marker, "red fox"]) == [c["id"]]
    with client_of(system, alice) as client:
        page = client.get("/api/images", params={"q": marker, "pageSize": 2, "page": 2}).json()
        assert page["total"] == 3 and page["next"] is False and [i["id"] for i in page["list"]] == [a["id"]]


@pytest.mark.parametrize("params", [
    {"bogus": "1"}, {"user": "abc"}, {"public": "maybe"}, {"choice": "x"}, {"like": "-1"}, {"sort": "name"},
    {"pageSize": "0"}, {"page": "x"}, {"tag": "99999999999999999999"}, {"user": ""},
])
def test_malformed_list_queries_are_422(system: System, params: dict) -> None:
    with system.client() as client:
        assert_problem(client.get("/api/images", params=params), 422)


# Blobs

def test_blobs_are_served_with_immutable_caching_and_conditional_gets(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    key = image["url"].removeprefix("/api/blobs/")
    with system.client() as client:
        answer = client.get(image["url"])
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["etag"] == f'"{key}"'
        again = client.get(image["url"], headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert client.get(image["url"], headers={"If-None-Match": '"other"'}).status_code == 200
        head = client.head(image["url"])
        assert head.status_code == 200 and head.headers["content-length"] == str(len(answer.content))


@pytest.mark.parametrize("key", ["ab/cd/" + "ab" + "cd" + "0" * 60 + ".png", "../../etc/passwd", "abc",
                                 "%2e%2e/%2e%2e/etc/passwd", "ab/cd/" + "f" * 64 + ".exe"])
def test_unknown_or_invalid_blob_keys_are_404(system: System, key: str) -> None:
    with system.client() as client:
        assert client.get(f"/api/blobs/{key}").status_code == 404


# Audit

def test_the_audit_trail_shows_the_images_history_to_its_owner(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    with client_of(system, people.alice) as client:
        client.patch(f"/api/images/{image['id']}", json={"name": "second"})
        client.delete(f"/api/images/{image['id']}")
        events = client.get(f"/api/images/{image['id']}/events").json()
    assert [e["type"] for e in events] == ["ImageUploaded", "ImageChanged", "ImageDeleted"]
    assert events[0]["data"]["width"] == image["width"] and events[1]["data"]["name"] == "second"
    assert events[2]["data"]["blob_key"] == image["url"].removeprefix("/api/blobs/")


def test_the_account_counts_its_own_images_public_and_private(system: System, people: People) -> None:
    newcomer = new_account(system, "counter")
    mine = [new_image(system, newcomer, public="true"), new_image(system, newcomer, public="false")]
    new_image(system, people.bob)  # someone else's does not count
    with client_of(system, newcomer) as client:
        assert client.get("/api/account").json()["counts"]["images"] == 2
        assert client.delete(f"/api/images/{mine[1]['id']}").status_code == 204
        account = client.get("/api/account").json()
    assert account["counts"]["images"] == 1 and account["quota"]["images"]["used"] == 1
