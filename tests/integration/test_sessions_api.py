"""Logins and tokens over HTTP on real servers: how a token is presented, when it stops working (at once), and
how failed logins are answered."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from aidraw.services import NatsServer, PostgresServer
from tests.accounts import PASSWORD, log_in, new_account, new_admin, system_with, unique_name
from tests.system import System


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def account_status(system: System, headers: dict[str, str]) -> int:
    with httpx.Client(base_url=system.url, headers=headers, timeout=30) as client:
        return client.get("/api/account").status_code


def test_login_by_name_or_email_returns_a_token_once(system: System) -> None:
    ann = new_account(system, "ann")
    for who in ({"name": ann.name.upper()}, {"email": ann.email.upper()}):
        answer = log_in(system, **who)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["user"]["id"] == ann.id and body["expires_at"]
        assert body["token"].startswith(f"{body['id']}.") and len(body["token"].split(".")[1]) == 43
        assert answer.headers["Cache-Control"] == "no-store"
        with system.client(body["token"]) as client:
            listed = client.get("/api/sessions").json()["list"]
        assert body["id"] in [s["id"] for s in listed]
        assert "token" not in str(listed) and "hash" not in str(listed)


def test_the_alias_sesions_works_too(system: System) -> None:
    ann = new_account(system, "ann")
    with system.client() as client:
        answer = client.post("/api/sesions", json={"name": ann.name, "password": PASSWORD})
    assert answer.status_code == 201
    with system.client(ann.token) as client:
        assert client.get("/api/sesions").status_code == 200
        assert client.delete(f"/api/sesions/{ann.session_id}").status_code == 204


def test_wrong_password_and_unknown_user_get_the_same_answer(system: System) -> None:
    ann = new_account(system, "ann")
    wrong = log_in(system, "a wrong password", name=ann.name)
    unknown = log_in(system, PASSWORD, name=unique_name("nobody"))
    unknown_email = log_in(system, PASSWORD, email="nobody@example.com")
    for answer in (wrong, unknown, unknown_email):
        assert_problem(answer, 401)
    assert wrong.json() == unknown.json() == unknown_email.json()


def test_wrong_password_and_unknown_user_take_about_the_same_time(system: System) -> None:
    ann = new_account(system, "ann")

    def median(**who: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            log_in(system, "a wrong password", **who)
            times.append(time.perf_counter() - started)
        return sorted(times)[2]

    known, unknown = median(name=ann.name), median(name=unique_name("nobody"))
    # Both verify an argon2id hash (tens of ms); without the dummy hash the unknown one would be ~10x faster.
    assert unknown > known * 0.5, (known, unknown)


def test_login_needs_one_of_name_or_email(system: System) -> None:
    ann = new_account(system, "ann")
    with system.client() as client:
        assert_problem(client.post("/api/sessions", json={"password": PASSWORD}), 422)
        assert_problem(client.post("/api/sessions", json={"name": ann.name, "email": ann.email,
                                                          "password": PASSWORD}), 422)
        assert_problem(client.post("/api/sessions", json={"name": ann.name, "password": PASSWORD,
                                                          "user_id": 1}), 422)


def test_a_token_works_as_bearer_or_token_header(system: System) -> None:
    ann = new_account(system, "ann")
    assert account_status(system, {"Authorization": f"Bearer {ann.token}"}) == 200
    assert account_status(system, {"Authorization": f"bearer {ann.token}"}) == 200
    assert account_status(system, {"token": ann.token}) == 200
    assert account_status(system, {}) == 401


@pytest.mark.parametrize("make", [
    lambda a: "garbage",
    lambda a: a.token + "x",
    lambda a: a.token[:-1] + ("A" if a.token[-1] != "A" else "B"),  # forged secret
    lambda a: f"{a.session_id + 1}.{a.token.split('.')[1]}",  # another (unknown) session id
    lambda a: f"9007199254740993.{a.token.split('.')[1]}",
    lambda a: "1." + "=" * 43,
])
def test_malformed_and_forged_tokens_are_401_on_every_method(system: System, make) -> None:
    ann = new_account(system, "ann")
    bad = make(ann)
    for headers in ({"Authorization": f"Bearer {bad}"}, {"token": bad}):
        with httpx.Client(base_url=system.url, headers=headers, timeout=30) as client:
            assert_problem(client.get("/api/account"), 401)
            assert_problem(client.get("/api/tags"), 401)  # a bad token is not silently anonymous
            assert_problem(client.post("/api/tags", json={"name": unique_name("t")}), 401)
    with httpx.Client(base_url=system.url, headers={"Authorization": f"Basic {ann.token}"}) as client:
        assert_problem(client.get("/api/account"), 401)


def test_logout_refuses_the_token_on_the_very_next_request(system: System) -> None:
    ann = new_account(system, "ann")
    other = log_in(system, name=ann.name).json()
    with system.client(ann.token) as client:
        assert client.delete(f"/api/sessions/{ann.session_id}").status_code == 204
        assert_problem(client.get("/api/account"), 401)
    with system.client(other["token"]) as client:  # the user's other session lives on
        assert client.get("/api/account").status_code == 200
        assert ann.session_id not in [s["id"] for s in client.get("/api/sessions").json()["list"]]


def test_a_session_is_shown_to_its_user_and_admins_only(system: System) -> None:
    ann, bob, admin = new_account(system, "ann"), new_account(system, "bob"), new_admin(system)
    with system.client(ann.token) as client:
        listed = {s["id"]: s for s in client.get("/api/sessions").json()["list"]}
        for path in ("sessions", "sesions"):
            answer = client.get(f"/api/{path}/{ann.session_id}")
            assert answer.status_code == 200, answer.text
            assert answer.json() == listed[ann.session_id]  # the list's fields: never the token or its hash
            assert "token" not in answer.text and "hash" not in answer.text
    with system.client(admin.token) as client:
        assert client.get(f"/api/sessions/{ann.session_id}").json()["user_id"] == ann.id
    with system.client(bob.token) as client:
        for path in ("sessions", "sesions"):
            assert_problem(client.get(f"/api/{path}/{ann.session_id}"), 404)
        assert_problem(client.get("/api/sessions/999999999"), 404)
    with system.client() as client:
        assert_problem(client.get(f"/api/sessions/{ann.session_id}"), 401)
        assert_problem(client.get(f"/api/sesions/{ann.session_id}"), 401)
    other = log_in(system, name=ann.name).json()
    with system.client(ann.token) as client:
        ended = client.delete(f"/api/sessions/{ann.session_id}")
        assert ended.status_code == 204
    with system.client(other["token"]) as client:  # an ended session is gone, as from the list
        seen = {"X-Event-Sequence": ended.headers["X-Event-Sequence"]}
        assert_problem(client.get(f"/api/sessions/{ann.session_id}", headers=seen), 404)
        assert client.get(f"/api/sessions/{other['id']}").status_code == 200


def test_nobody_ends_another_users_session_but_an_admin(system: System) -> None:
    ann, bob, admin = new_account(system, "ann"), new_account(system, "bob"), new_admin(system)
    with system.client(bob.token) as client:
        assert_problem(client.delete(f"/api/sessions/{ann.session_id}"), 404)
        assert_problem(client.get("/api/sessions", params={"user": ann.id}), 403)
    with system.client(admin.token) as client:
        assert ann.session_id in [s["id"] for s in client.get("/api/sessions", params={"user": ann.id}).json()["list"]]
        assert client.delete(f"/api/sessions/{ann.session_id}").status_code == 204
    assert account_status(system, ann.headers) == 401


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(system: System) -> None:
    ann = new_account(system, "ann")
    other = log_in(system, name=ann.name).json()["token"]
    new_password = "another long password"
    with system.client(ann.token) as client:
        assert_problem(client.patch("/api/account", json={"password": new_password}), 422)
        assert_problem(client.patch("/api/account", json={"password": new_password,
                                                          "old_password": "wrong password"}), 403)
        changed = client.patch("/api/account", json={"password": new_password, "old_password": PASSWORD})
        assert changed.status_code == 200, changed.text
        assert client.get("/api/account").status_code == 200
        assert [s["id"] for s in client.get("/api/sessions").json()["list"]] == [ann.session_id]
    assert account_status(system, {"Authorization": f"Bearer {other}"}) == 401
    assert_problem(log_in(system, PASSWORD, name=ann.name), 401)
    assert log_in(system, new_password, name=ann.name).status_code == 201


def test_an_admin_password_reset_ends_every_session_of_the_user(system: System) -> None:
    ann, admin = new_account(system, "ann"), new_admin(system)
    with system.client(admin.token) as client:
        assert client.patch(f"/api/users/{ann.id}", json={"password": "reset by the admin"}).status_code == 200
    assert account_status(system, ann.headers) == 401
    assert account_status(system, admin.headers) == 200
    assert log_in(system, "reset by the admin", name=ann.name).status_code == 201


def login_from(system: System, address: str, password: str = PASSWORD, **who: str) -> httpx.Response:
    with system.client() as client:
        return client.post("/api/sessions", json={**who, "password": password},
                           headers={"X-Forwarded-For": f"192.0.2.99, {address}"})  # the left one is the client's


def test_failures_slow_one_account_from_one_address_and_never_lock_its_user_out(
        nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path) -> None:
    with system_with(nats_server, postgres_server, servers_dir, AIDRAW_LOGIN_MAX_FAILURES="3",
                     AIDRAW_LOGIN_MAX_FAILURES_PER_ADDRESS="5", AIDRAW_LOGIN_FAILURE_WINDOW="600",
                     AIDRAW_TRUSTED_PROXIES="127.0.0.1, ::1") as sut:
        ann, bob, attacker, home = new_account(sut, "ann"), new_account(sut, "bob"), "203.0.113.7", "198.51.100.2"
        for _ in range(3):
            assert_problem(login_from(sut, attacker, "wrong password", name=ann.name), 401)
        # past the limit each failure doubles the wait after it (1 s, 2 s, 4 s, ...): slowed, never locked
        for wait in (1, 2):
            time.sleep(wait + 0.1)
            assert_problem(login_from(sut, attacker, "wrong password", name=ann.name), 401)
        slowed = login_from(sut, attacker, PASSWORD, name=ann.name)  # the right password waits too
        assert_problem(slowed, 429)
        assert slowed.headers["Retry-After"] in ("3", "4")
        assert_problem(login_from(sut, attacker, PASSWORD, name=ann.name.upper()), 429)  # same account, any case
        assert_problem(login_from(sut, attacker, PASSWORD, email=ann.email), 429)  # ...or by its email
        # the stranger's failures do not hold Ann back from her own address
        assert login_from(sut, home, PASSWORD, name=ann.name).status_code == 201
        time.sleep(4.1)  # and once the wait is over, the right password works from anywhere
        assert login_from(sut, attacker, PASSWORD, name=ann.name).status_code == 201
        # one address failing over many accounts slows down too (unknown accounts count): the 6th failure
        assert_problem(login_from(sut, attacker, "wrong password", name=unique_name("nobody")), 401)
        assert_problem(login_from(sut, attacker, PASSWORD, name=bob.name), 429)
        assert login_from(sut, home, PASSWORD, name=bob.name).status_code == 201


def test_expired_sessions_are_refused_and_use_extends_them(
        nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path) -> None:
    with system_with(nats_server, postgres_server, servers_dir, AIDRAW_SESSION_TTL="3",
                     AIDRAW_SESSION_REFRESH="1") as sut:
        idle, busy = new_account(sut, "idle"), new_account(sut, "busy")
        for _ in range(6):  # 4.5 s of use, well past the first expiry (3 s)
            assert account_status(sut, busy.headers) == 200
            time.sleep(0.75)
        assert account_status(sut, busy.headers) == 200
        assert account_status(sut, idle.headers) == 401
        with sut.client(busy.token) as client:
            trail = client.get(f"/api/sessions/{busy.session_id}/events").json()
        assert "SessionExtended" in [e["type"] for e in trail]
