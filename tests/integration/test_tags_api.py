"""Tags over HTTP, through command -> event -> projector -> query, on real servers. Writes need a token; the
creator (or an admin) may change a tag."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.accounts import Account, new_account, new_admin
from tests.catalog_objects import png_bytes
from tests.system import System


@pytest.fixture(scope="module")
def creator(system: System) -> Account:
    return new_account(system, "creator")


def unique(prefix: str = "tag") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def total(client: httpx.Client) -> int:
    return int(client.get("/api/tags").json()["total"])


def test_create_answers_the_tag_and_its_sequence_and_is_readable_at_once(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        name = unique()
        created = client.post("/api/tags", json={"name": f"  {name} "})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["name"] == name
        assert isinstance(body["id"], int) and 0 < body["id"] < 2**53
        assert int(created.headers["X-Event-Sequence"]) > 0
        assert created.headers["Location"] == f"/api/tags/{body['id']}"
        detail = client.get(f"/api/tags/{body['id']}")
        assert detail.status_code == 200
        assert detail.json() == body


def test_names_are_unique_ignoring_case(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        name = unique("Cat")
        assert client.post("/api/tags", json={"name": name}).status_code == 201
        before = total(client)
        body = assert_problem(client.post("/api/tags", json={"name": name.upper()}), 409)
        assert "exists" in body["detail"]
        assert total(client) == before


@pytest.mark.parametrize(
    "payload",
    [{"name": ""}, {"name": "   "}, {"name": "a,b"}, {"name": "12345"}, {"name": "x" * 51}, {"name": "a\x00b"},
     {"name": 5}, {}, {"name": "ok", "id": 7}, {"name": "ok", "user_id": 3}, {"name": "ok", "created_at": "x"}],
)
def test_bad_input_is_refused_with_422_and_changes_nothing(system: System, creator: Account, payload: dict) -> None:
    with system.client(creator.token) as client:
        before = total(client)
        assert_problem(client.post("/api/tags", json=payload), 422)
        assert total(client) == before


@pytest.mark.parametrize(("raw", "words"), [
    (b"{not json", "expecting property name enclosed in double quotes at character 1"),
    ('{"name": "caf\u00e9"}'.encode("latin-1"), "byte 0xe9 at position 13 is not UTF-8"),
    (b'{"name": "x", "n": ' + b"1" * 5000 + b"}", "too many digits"),
    (b'{"name": ' + b"[" * 100_000, "nest too deeply"),
])
def test_unreadable_json_is_422_saying_what_is_wrong(system: System, creator: Account, raw: bytes,
                                                     words: str) -> None:
    with system.client(creator.token) as client:
        before = total(client)
        response = client.post("/api/tags", content=raw, headers={"content-type": "application/json"})
        body = assert_problem(response, 422)
        assert body["detail"].startswith("The body is not valid JSON (") and words in body["detail"]
        assert "application/json" in body["detail"] and body["errors"][0]["loc"] == ["body"]
        assert total(client) == before


@pytest.mark.parametrize("content_type", ["text/plain", None])
def test_json_sent_without_a_json_content_type_is_422_naming_the_content_type(system: System, creator: Account,
                                                                              content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with system.client(creator.token) as client:
        before = total(client)
        body = assert_problem(client.post("/api/tags", content=b'{"name": "plain"}', headers=headers), 422)
        assert f"Content-Type is {content_type or 'none'}" in body["detail"]
        assert "Content-Type: application/json" in body["detail"]
        assert total(client) == before


JSON_MAX_BYTES = 1024 * 1024  # AIDRAW_JSON_MAX_BYTES's default


def test_a_body_declared_over_the_json_limit_is_413_before_it_is_sent(system: System, creator: Account) -> None:
    url = httpx.URL(system.url)
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(b"POST /api/tags HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + creator.token.encode() + b"\r\n"
                     b"Content-Length: " + str(JSON_MAX_BYTES + 1).encode() + b"\r\n\r\n")
        answer = b""  # not one byte of the body is sent: the answer cannot wait for it
        while b"}" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413") and "application/problem+json" in head.lower()
    assert json.loads(body)["detail"].startswith(f"A request body may have at most {JSON_MAX_BYTES} bytes")


def test_a_chunked_body_is_cut_off_with_413_once_past_the_json_limit(system: System, creator: Account) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    with system.client(creator.token) as client:
        before = total(client)
        body = assert_problem(client.post("/api/tags", content=chunks(),
                                          headers={"content-type": "application/json"}), 413)
        assert f"at most {JSON_MAX_BYTES} bytes" in body["detail"]
        just_under = b'{"name": "' + b"x" * (JSON_MAX_BYTES - 20) + b'"}'
        assert_problem(client.post("/api/tags", content=just_under, headers={"content-type": "application/json"}),
                       422)  # read, and refused for its name
        assert total(client) == before


def test_a_multipart_body_is_capped_too_except_on_the_upload_route(system: System, creator: Account) -> None:
    big = {"file": ("a.bin", b"x" * (JSON_MAX_BYTES + 1), "application/octet-stream")}
    with system.client(creator.token) as client:
        before = total(client)
        body = assert_problem(client.post("/api/tags", files=big), 413)
        assert f"at most {JSON_MAX_BYTES} bytes" in body["detail"]
        assert total(client) == before
        # the upload route reads it, and refuses it for what it is, not for its size
        assert_problem(client.post("/api/images", files=big), 422)


def test_rename_frees_the_old_name_and_refuses_a_taken_one(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        old, new, other = unique("old"), unique("new"), unique("other")
        tag = client.post("/api/tags", json={"name": old}).json()
        client.post("/api/tags", json={"name": other})
        renamed = client.patch(f"/api/tags/{tag['id']}", json={"name": new})
        assert renamed.status_code == 200 and renamed.json()["name"] == new
        assert client.get(f"/api/tags/{tag['id']}").json()["name"] == new
        assert client.post("/api/tags", json={"name": old}).status_code == 201
        assert_problem(client.patch(f"/api/tags/{tag['id']}", json={"name": other.upper()}), 409)
        assert client.get(f"/api/tags/{tag['id']}").json()["name"] == new
        # A change of case only keeps the claim.
        assert client.patch(f"/api/tags/{tag['id']}", json={"name": new.upper()}).status_code == 200


def test_delete_removes_the_tag_and_frees_its_name(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        name = unique()
        tag = client.post("/api/tags", json={"name": name}).json()
        deleted = client.delete(f"/api/tags/{tag['id']}")
        assert deleted.status_code == 204 and int(deleted.headers["X-Event-Sequence"]) > 0
        assert_problem(client.get(f"/api/tags/{tag['id']}"), 404)
        assert_problem(client.delete(f"/api/tags/{tag['id']}"), 404)
        assert_problem(client.patch(f"/api/tags/{tag['id']}", json={"name": unique()}), 404)
        assert client.post("/api/tags", json={"name": name}).status_code == 201


@pytest.mark.parametrize("path", ["/api/tags/0", "/api/tags/-1", "/api/tags/9007199254740993",
                                  "/api/tags/99999999999999999999999", "/api/tags/abc"])
def test_ids_out_of_range_are_client_errors(system: System, creator: Account, path: str) -> None:
    with system.client(creator.token) as client:
        assert client.get(path).status_code in (404, 422)
        assert client.delete(path).status_code in (404, 422)


def test_an_id_is_read_only_in_plain_digits(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        number = client.post("/api/tags", json={"name": unique()}).json()["id"]
        assert client.get(f"/api/tags/{number}").status_code == 200
        for spelled in (f"0{number}", f"+{number}", f"%20{number}", f"{number}.0", f"{number}%20"):
            body = assert_problem(client.get(f"/api/tags/{spelled}"), 422)
            assert "plain digits" in body["detail"], spelled
            assert_problem(client.delete(f"/api/tags/{spelled}"), 422)
        assert client.get(f"/api/tags/{number}").status_code == 200  # nothing was deleted


def test_unknown_ids_are_404(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        assert_problem(client.get("/api/tags/123456789"), 404)
        assert_problem(client.delete("/api/tags/123456789"), 404)
        assert_problem(client.get("/api/tags/123456789/events"), 404)


def test_lists_page_and_refuse_unknown_or_malformed_parameters(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        marker = unique("page")
        ids = [client.post("/api/tags", json={"name": f"{marker}-{i}"}).json()["id"] for i in range(5)]
        first = client.get("/api/tags", params={"q": marker, "pageSize": 2}).json()
        assert first["page"] == 1 and first["page_size"] == 2 and first["total"] == 5 and first["next"] is True
        assert [t["id"] for t in first["list"]] == ids[::-1][:2]
        last = client.get("/api/tags", params={"q": marker, "page_size": 2, "page": 3}).json()
        assert [t["id"] for t in last["list"]] == ids[:1] and last["next"] is False
        oldest = client.get("/api/tags", params={"q": marker, "sort": "date+"}).json()
        assert [t["id"] for t in oldest["list"]] == ids
        assert client.get(f"/api/tags?q={marker}&sort=date+").json()["list"][0]["id"] == ids[0]
        for bad in ({"bogus": "1"}, {"page": "0"}, {"pageSize": "101"}, {"page_size": "x"}, {"sort": "name"}):
            body = assert_problem(client.get("/api/tags", params=bad), 422)
            (param,) = bad
            assert param in body["detail"] or param in str(body.get("errors"))


def test_same_idempotency_key_creates_once(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        name, key = unique(), uuid.uuid4().hex
        first = client.post("/api/tags", json={"name": name}, headers={"Idempotency-Key": key})
        second = client.post("/api/tags", json={"name": name}, headers={"Idempotency-Key": key})
        assert first.status_code == 201 and second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert client.get("/api/tags", params={"q": name}).json()["total"] == 1


def test_another_users_idempotency_key_is_a_new_key_for_them_and_reveals_nothing(system: System,
                                                                                  creator: Account) -> None:
    other = new_account(system, "other")
    key, name = uuid.uuid4().hex, unique()
    with system.client(creator.token) as client:
        first = client.post("/api/tags", json={"name": name}, headers={"Idempotency-Key": key})
        assert first.status_code == 201
    with system.client(other.token) as client:
        # the same body: the answer anyone gets for a taken name, not the first request's tag
        same = assert_problem(client.post("/api/tags", json={"name": name}, headers={"Idempotency-Key": key}), 409)
        fresh = assert_problem(client.post("/api/tags", json={"name": name}), 409)
        assert same["detail"] == fresh["detail"]
        # another body: created, as with any new key (not a 422 telling that the key was used with another body)
        mine = client.post("/api/tags", json={"name": unique()}, headers={"Idempotency-Key": key})
        assert mine.status_code == 201 and mine.json()["user_id"] == other.id
        assert mine.json()["id"] != first.json()["id"]


def test_a_repeat_after_delete_answers_the_first_answer(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        name, key = unique(), uuid.uuid4().hex
        first = client.post("/api/tags", json={"name": name}, headers={"Idempotency-Key": key})
        assert first.status_code == 201
        renamed = client.patch(f"/api/tags/{first.json()['id']}", json={"name": unique()})
        assert renamed.status_code == 200
        assert client.delete(f"/api/tags/{first.json()['id']}").status_code == 204
        again = client.post("/api/tags", json={"name": name}, headers={"Idempotency-Key": key})
        assert again.status_code == 201 and again.json() == first.json()
        assert client.get(f"/api/tags/{first.json()['id']}").status_code == 404  # nothing was made again


def test_a_key_repeated_with_another_body_is_422_and_stores_nothing(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        name, key = unique(), uuid.uuid4().hex
        first = client.post("/api/tags", json={"name": name}, headers={"Idempotency-Key": key})
        assert first.status_code == 201
        other = unique()
        refused = assert_problem(client.post("/api/tags", json={"name": other}, headers={"Idempotency-Key": key}),
                                 422)
        assert refused["errors"][0]["loc"] == ["header", "Idempotency-Key"] and "new key" in refused["detail"]
        assert client.get("/api/tags", params={"q": other}).json()["total"] == 0
        # the same request spelled otherwise (spaces, an escape) is the same request
        escaped = name.replace("-", "\\u002d")
        spelled = ('{ "name" : "' + escaped + '" }').encode()
        again = client.post("/api/tags", content=spelled, headers={"Idempotency-Key": key,
                                                                    "content-type": "application/json"})
        assert again.status_code == 201 and again.json()["id"] == first.json()["id"]


def test_concurrent_creates_of_one_name_give_one_tag(system: System, creator: Account) -> None:
    name = unique("race")

    def create(_: int) -> int:
        with system.client(creator.token) as client:
            return client.post("/api/tags", json={"name": name}).status_code

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(create, range(10)))
    assert statuses == [201] + [409] * 9
    with system.client(creator.token) as client:
        assert client.get("/api/tags", params={"q": name}).json()["total"] == 1


def test_audit_trail_shows_the_history(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        tag = client.post("/api/tags", json={"name": unique("a")}).json()
        client.patch(f"/api/tags/{tag['id']}", json={"name": unique("b")})
        client.delete(f"/api/tags/{tag['id']}")
        trail = client.get(f"/api/tags/{tag['id']}/events")
        assert trail.status_code == 200
        events = trail.json()
        assert [e["type"] for e in events] == ["TagCreated", "TagRenamed", "TagDeleted"]
        assert [e["version"] for e in events] == [1, 2, 3]
        assert events[0]["sequence"] < events[1]["sequence"] < events[2]["sequence"]
        assert events[0]["data"]["name"] == tag["name"] and events[0]["class_version"] == 2


def test_create_then_list_a_thousand_times_never_misses_its_own_write(system: System, creator: Account) -> None:
    marker = unique("ryw")
    with system.client(creator.token) as client:
        for i in range(1000):
            tag = client.post("/api/tags", json={"name": f"{marker}-{i}"}).json()
            listed = client.get("/api/tags", params={"q": marker, "pageSize": 1}).json()
            assert listed["list"][0]["id"] == tag["id"], f"write {i} not visible"
            assert listed["total"] == i + 1


def test_writes_need_a_token_and_record_the_creator(system: System, creator: Account) -> None:
    with system.client() as anonymous:
        assert_problem(anonymous.post("/api/tags", json={"name": unique()}), 401)
    with system.client(creator.token) as client:
        tag = client.post("/api/tags", json={"name": unique()}).json()
        assert tag["user_id"] == creator.id
    with system.client() as anonymous:
        assert anonymous.get(f"/api/tags/{tag['id']}").status_code == 404  # nothing public carries it yet
        assert_problem(anonymous.patch(f"/api/tags/{tag['id']}", json={"name": unique()}), 401)
        assert_problem(anonymous.delete(f"/api/tags/{tag['id']}"), 401)


def test_only_the_creator_or_an_admin_changes_a_tag(system: System, creator: Account) -> None:
    other, admin = new_account(system, "other"), new_admin(system)
    with system.client(creator.token) as client:
        tag = client.post("/api/tags", json={"name": unique()}).json()
    with system.client(other.token) as client:
        assert_problem(client.patch(f"/api/tags/{tag['id']}", json={"name": unique()}), 403)
        assert_problem(client.delete(f"/api/tags/{tag['id']}"), 403)
    with system.client(admin.token) as client:
        assert client.patch(f"/api/tags/{tag['id']}", json={"name": unique()}).status_code == 200
        assert client.delete(f"/api/tags/{tag['id']}").status_code == 204


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_lookalike_and_invisible_names_are_not_new_tags(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        name = unique("cat")
        assert client.post("/api/tags", json={"name": name}).status_code == 201
        before = total(client)
        # the same name in fullwidth letters is the same name (NFKC): taken
        assert "exists already" in assert_problem(client.post("/api/tags", json={"name": fullwidth(name)}),
                                                  409)["detail"]
        for sneaky in (name[:1] + "\u200b" + name[1:], name + "\u202edef", "\ufeff" + name, name + "\u2063",
                       name + "\u00ad", name.replace("-", "\u2028"), name + "\ufe0f"):
            refused = assert_problem(client.post("/api/tags", json={"name": sneaky}), 422)
            assert "invisible characters" in refused["detail"], sneaky
        # control characters are refused, not turned into spaces
        for control in ("a\tb", "a\nb", "a\x01b", "a\x85b"):
            assert "control characters" in assert_problem(client.post("/api/tags", json={"name": control}),
                                                          422)["detail"]
        # a rename is held to the same rule
        tag_id = client.get("/api/tags", params={"q": name}).json()["list"][0]["id"]
        assert_problem(client.patch(f"/api/tags/{tag_id}", json={"name": name + "\u200d"}), 422)
        assert total(client) == before
        spaced = client.post("/api/tags", json={"name": f" \u3000{name}\u00a0 x "})
        assert spaced.status_code == 201 and spaced.json()["name"] == f"{name} x"


def test_one_length_limit_everywhere(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        limits = client.get("/openapi.json").json()["components"]["schemas"]
        assert limits["TagIn"]["properties"]["name"]["maxLength"] == 50
        longest = unique("long").ljust(50, "x")
        assert client.post("/api/tags", json={"name": longest}).status_code == 201
        assert_problem(client.post("/api/tags", json={"name": longest + "y"}), 422)
        # NFKC may lengthen a name: the limit counts the stored name
        assert_problem(client.post("/api/tags", json={"name": "\ufdfa" * 3}), 422)
        upload = client.post("/api/images", files={"file": ("p.png", png_bytes(), "image/png")},
                             data={"tags": longest + "y"})
        assert_problem(upload, 422)


def test_an_empty_patch_answers_the_tag_unchanged(system: System, creator: Account) -> None:
    with system.client(creator.token) as client:
        tag = client.post("/api/tags", json={"name": unique()}).json()
        same = client.patch(f"/api/tags/{tag['id']}", json={})
        assert same.status_code == 200 and same.json() == tag
        assert_problem(client.patch(f"/api/tags/{tag['id']}", json={"name": None}), 422)
    with system.client(new_account(system, "other").token) as client:
        assert_problem(client.patch(f"/api/tags/{tag['id']}", json={}), 403)


def test_a_private_uploads_new_tags_stay_private_until_something_public_carries_them(system: System,
                                                                                      creator: Account) -> None:
    secret = unique("secret")
    with system.client(creator.token) as client:
        image = client.post("/api/images", files={"file": ("p.png", png_bytes(), "image/png")},
                            data={"tags": secret, "public": "false"})
        assert image.status_code == 201, image.text
        mine = client.get("/api/tags", params={"q": secret}).json()["list"]
        assert [t["name"] for t in mine] == [secret]
        seq = image.headers["X-Event-Sequence"]
    tag_id = mine[0]["id"]
    other = new_account(system, "other")
    for token in (None, other.token):
        with system.client(token) as client:
            listed = client.get("/api/tags", params={"q": secret}, headers={"X-Event-Sequence": seq}).json()
            assert listed["total"] == 0 and listed["list"] == []
            assert client.get(f"/api/tags/{tag_id}").status_code == 404
    with system.client(new_admin(system).token) as admin:
        assert admin.get(f"/api/tags/{tag_id}").status_code == 200
    with system.client(creator.token) as client:
        published = client.patch(f"/api/images/{image.json()['id']}", json={"public": True})
        assert published.status_code == 200
        seq = published.headers["X-Event-Sequence"]
    with system.client() as anonymous:
        listed = anonymous.get("/api/tags", params={"q": secret}, headers={"X-Event-Sequence": seq}).json()
        assert [t["id"] for t in listed["list"]] == [tag_id]
        assert anonymous.get(f"/api/tags/{tag_id}").status_code == 200


def test_a_tag_other_peoples_objects_carry_is_renamed_or_deleted_by_admins_only(system: System,
                                                                                creator: Account) -> None:
    name = unique("shared")
    with system.client(creator.token) as client:
        tag = client.post("/api/tags", json={"name": name}).json()
        own = client.post("/api/images", files={"file": ("p.png", png_bytes(), "image/png")}, data={"tags": name})
        assert own.status_code == 201
        assert client.patch(f"/api/tags/{tag['id']}", json={"name": name.upper()}).status_code == 200  # still mine
    with system.client(new_account(system, "other").token) as client:
        used = client.post("/api/images", files={"file": ("p.png", png_bytes(), "image/png")}, data={"tags": name})
        assert used.status_code == 201 and used.json()["tags"] == [name.upper()]
    with system.client(creator.token) as client:
        refused = assert_problem(client.patch(f"/api/tags/{tag['id']}", json={"name": unique()}), 403)
        assert "only an admin" in refused["detail"]
        assert_problem(client.delete(f"/api/tags/{tag['id']}"), 403)
        assert client.patch(f"/api/tags/{tag['id']}", json={}).status_code == 403
        trail = client.get(f"/api/tags/{tag['id']}/events").json()
        assert [e["type"] for e in trail][-1] == "TagShared"
    with system.client(new_admin(system).token) as admin:
        assert admin.patch(f"/api/tags/{tag['id']}", json={"name": unique()}).status_code == 200
        assert admin.delete(f"/api/tags/{tag['id']}").status_code == 204
