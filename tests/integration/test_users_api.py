"""Users over HTTP on real servers: sign-up, uniqueness, who sees emails, who changes what, deletion."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import pytest

from aidraw.services import NatsServer, PostgresServer
from tests.accounts import PASSWORD, log_in, new_account, new_admin, sign_up, system_with, unique_name
from tests.system import System


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def test_sign_up_answers_the_user_with_its_email_and_no_password(system: System) -> None:
    name = unique_name()
    created = sign_up(system, f"  {name} ", f"{name}@Example.com")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == name and body["email"] == f"{name}@Example.com" and body["role"] == "user"
    assert set(body) == {"id", "name", "email", "role", "created_at", "updated_at"}
    assert created.headers["Location"] == f"/api/users/{body['id']}"
    assert PASSWORD not in created.text


def test_a_repeated_sign_up_answers_only_the_same_sign_up(system: System) -> None:
    name, key = unique_name(), unique_name("key")
    body = {"name": name, "email": f"{name}@example.com", "password": PASSWORD}
    with system.client() as client:
        first = client.post("/api/users", json=body, headers={"Idempotency-Key": key})
        again = client.post("/api/users", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 201 and first.json() == again.json()
        # someone who has the key but not the email learns nothing (the email, above all)
        guess = client.post("/api/users", json={**body, "email": "someone@example.com"},
                            headers={"Idempotency-Key": key})
        assert_problem(guess, 422)
        assert body["email"] not in guess.text


@pytest.mark.parametrize("field", ["name", "email"])
def test_names_and_emails_are_unique_ignoring_case(system: System, field: str) -> None:
    name = unique_name("Dup")
    assert sign_up(system, name, f"{name}@example.com").status_code == 201
    again = {"name": name.upper(), "email": f"other-{name}@example.com"} if field == "name" else \
        {"name": unique_name(), "email": f"{name.upper()}@EXAMPLE.COM"}
    body = assert_problem(sign_up(system, **again), 409)
    assert field.replace("name", "user name") in body["detail"] or field in body["detail"]


def test_concurrent_sign_ups_with_one_email_make_one_account(system: System) -> None:
    email = f"{unique_name('race')}@example.com"

    def attempt(i: int) -> int:
        return sign_up(system, unique_name(f"racer{i}"), email).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(attempt, range(6)))
    assert statuses == [201] + [409] * 5
    assert log_in(system, email=email).status_code == 201  # the one account works


@pytest.mark.parametrize("extra", [{"id": 5}, {"role": "admin"}, {"user_id": 1}, {"created_at": "2020-01-01"},
                                   {"is_admin": True}])
def test_sign_up_refuses_read_only_and_unknown_fields(system: System, extra: dict) -> None:
    name = unique_name()
    with system.client() as client:
        response = client.post("/api/users", json={"name": name, "email": f"{name}@example.com",
                                                   "password": PASSWORD, **extra})
    assert_problem(response, 422)
    assert log_in(system, name=name).status_code == 401  # nothing was made


@pytest.mark.parametrize("body", [{"name": "", "email": "a@b.cd", "password": PASSWORD},
                                  {"name": "ok-name", "email": "not-an-email", "password": PASSWORD},
                                  {"name": "ok-name", "email": "a@b.cd", "password": "short"},
                                  {"name": "ok-name", "email": "a@b.cd", "password": "x" * 1025},
                                  {"name": "12345", "email": "a@b.cd", "password": PASSWORD},
                                  {"name": "ok-name", "email": "a@b.cd"}])
def test_sign_up_refuses_bad_values(system: System, body: dict) -> None:
    with system.client() as client:
        assert_problem(client.post("/api/users", json=body), 422)


def test_emails_are_shown_to_their_owner_and_admins_only(system: System) -> None:
    ann, bob, admin = new_account(system, "ann"), new_account(system, "bob"), new_admin(system)
    for token, shown in ((None, False), (bob.token, False), (ann.token, True), (admin.token, True)):
        with system.client(token) as client:
            detail = client.get(f"/api/users/{ann.id}").json()
            assert detail["name"] == ann.name
            assert detail["email"] == (ann.email if shown else None)
            listed = client.get("/api/users", params={"q": ann.name}).json()["list"]
            assert [u["email"] for u in listed] == [ann.email if shown else None]


def test_a_user_changes_their_own_name_and_email_and_frees_the_old_ones(system: System) -> None:
    ann = new_account(system, "ann")
    new_name = unique_name("renamed")
    with system.client(ann.token) as client:
        changed = client.patch(f"/api/users/{ann.id}", json={"name": new_name, "email": f"{new_name}@example.com",
                                                             "old_password": PASSWORD})
        assert changed.status_code == 200, changed.text
        assert changed.json()["name"] == new_name
        assert client.get("/api/account").json()["email"] == f"{new_name}@example.com"
    assert sign_up(system, ann.name, ann.email).status_code == 201  # the old ones are free again
    assert log_in(system, name=new_name).status_code == 201
    assert log_in(system, email=f"{new_name}@example.com").status_code == 201


def test_roles_are_changed_by_admins_only_and_never_on_oneself(system: System) -> None:
    ann, bob, admin = new_account(system, "ann"), new_account(system, "bob"), new_admin(system)
    with system.client(ann.token) as client:
        assert_problem(client.patch(f"/api/users/{ann.id}", json={"role": "admin"}), 403)
        assert_problem(client.patch("/api/account", json={"role": "admin"}), 422)
        assert_problem(client.patch(f"/api/users/{bob.id}", json={"role": "admin"}), 403)
    with system.client(admin.token) as client:
        assert_problem(client.patch(f"/api/users/{admin.id}", json={"role": "user"}), 403)
        assert_problem(client.patch(f"/api/users/{ann.id}", json={"role": "root"}), 422)
        promoted = client.patch(f"/api/users/{ann.id}", json={"role": "admin"})
        assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    with system.client(ann.token) as client:  # the same token carries the new role at once
        assert client.get(f"/api/users/{bob.id}").json()["email"] == bob.email


@pytest.mark.parametrize("extra", [{"id": 1}, {"user_id": 1}, {"created_at": "2020-01-01"}, {"token": "x"}])
def test_account_changes_refuse_read_only_fields(system: System, extra: dict) -> None:
    ann = new_account(system, "ann")
    with system.client(ann.token) as client:
        assert_problem(client.patch("/api/account", json=extra), 422)
        assert_problem(client.patch(f"/api/users/{ann.id}", json=extra), 422)


@pytest.mark.parametrize("body", [{"name": None}, {"email": None}, {"name": None, "email": None},
                                  {"password": None}, {"old_password": None}])
def test_null_is_refused_naming_the_field_and_changes_nothing(system: System, body: dict) -> None:
    ann, admin = new_account(system, "ann"), new_admin(system)
    with system.client(ann.token) as client:
        before = client.get("/api/account").json()
        refused = assert_problem(client.patch("/api/account", json=body), 422)
        assert ["body", next(iter(body))] in [e["loc"] for e in refused["errors"]]
        assert "cannot be null" in refused["detail"]
        assert_problem(client.patch(f"/api/users/{ann.id}", json=body), 422)
    with system.client(admin.token) as client:
        assert_problem(client.patch(f"/api/users/{ann.id}", json={**body, "role": None}), 422)
        assert_problem(client.patch(f"/api/users/{ann.id}", json={"role": None}), 422)
    with system.client(ann.token) as client:
        assert client.get("/api/account").json() == before


def test_deleting_a_user_ends_their_sessions_and_hides_them(system: System) -> None:
    ann, admin = new_account(system, "ann"), new_admin(system)
    with system.client(admin.token) as client:
        assert client.delete(f"/api/users/{ann.id}").status_code == 204
        assert_problem(client.get(f"/api/users/{ann.id}"), 404)
        assert client.get("/api/users", params={"q": ann.name}).json()["total"] == 0
        assert_problem(client.delete(f"/api/users/{ann.id}"), 404)
    with system.client(ann.token) as client:
        assert_problem(client.get("/api/account"), 401)
    assert log_in(system, name=ann.name).status_code == 401
    assert sign_up(system, ann.name, ann.email).status_code == 201  # name and email are free again


def test_users_delete_themselves_but_not_others(system: System) -> None:
    ann, bob = new_account(system, "ann"), new_account(system, "bob")
    with system.client(bob.token) as client:
        assert_problem(client.delete(f"/api/users/{ann.id}"), 403)
        assert_problem(client.patch(f"/api/users/{ann.id}", json={"name": unique_name()}), 403)
    with system.client(ann.token) as client:
        assert client.delete(f"/api/users/{ann.id}").status_code == 204
        assert_problem(client.get("/api/sessions"), 401)


def test_the_account_shows_counts_and_quota(system: System) -> None:
    ann = new_account(system, "ann")
    with system.client(ann.token) as client:
        account = client.get("/api/account").json()
    assert account["id"] == ann.id and account["email"] == ann.email
    assert account["counts"] == {"images": 0, "models": 0, "tasks": 0}
    assert account["quota"]["images"] == {"used": 0, "limit": None}
    with system.client() as anonymous:
        assert_problem(anonymous.get("/api/account"), 401)


def test_closed_sign_up_lets_only_admins_create_users(nats_server: NatsServer, postgres_server: PostgresServer,
                                                      servers_dir: Path) -> None:
    with system_with(nats_server, postgres_server, servers_dir, AIDRAW_SIGNUP_OPEN="false") as closed:
        assert_problem(sign_up(closed), 401)
        admin = new_admin(closed, by_command=True)  # the operator's first admin: the real `aidraw user create`
        name = unique_name()
        with closed.client(admin.token) as client:
            made = client.post("/api/users", json={"name": name, "email": f"{name}@example.com",
                                                   "password": PASSWORD})
            assert made.status_code == 201, made.text
        user = log_in(closed, name=name).json()
        with closed.client(user["token"]) as client:
            other = unique_name()
            assert_problem(client.post("/api/users", json={"name": other, "email": f"{other}@example.com",
                                                           "password": PASSWORD}), 403)


def test_changing_ones_own_email_needs_the_current_password(system: System) -> None:
    ann, admin = new_account(system, "ann"), new_admin(system)
    taken_over = f"{unique_name('thief')}@example.com"
    with system.client(ann.token) as client:  # a stolen session alone cannot move the account to another inbox
        refused = assert_problem(client.patch("/api/account", json={"email": taken_over}), 422)
        assert refused["errors"][0]["loc"] == ["body", "old_password"]
        assert_problem(client.patch(f"/api/users/{ann.id}", json={"email": taken_over}), 422)
        assert_problem(client.patch("/api/account", json={"email": taken_over, "old_password": "wrong guess"}),
                       403)
        assert client.get("/api/account").json()["email"] == ann.email
        renamed = client.patch("/api/account", json={"name": unique_name("ann")})  # a name needs no password
        assert renamed.status_code == 200
        same = client.patch("/api/account", json={"email": ann.email})  # unchanged: nothing to confirm
        assert same.status_code == 200
        moved = client.patch("/api/account", json={"email": taken_over, "old_password": PASSWORD})
        assert moved.status_code == 200 and moved.json()["email"] == taken_over
    with system.client(admin.token) as client:  # an admin sets another user's email without their password
        back = client.patch(f"/api/users/{ann.id}", json={"email": ann.email})
        assert back.status_code == 200 and back.json()["email"] == ann.email
