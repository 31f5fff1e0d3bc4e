"""People for the catalog tests: a user (or an admin) with a token, made through the real accounts routes
(`POST /api/users`, `POST /api/sessions`) and, for admins, the `aidraw user create --admin` command."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass

import httpx

from tests.system import System

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _log_in(system: System, name: str) -> str:
    with system.client() as client:
        answer = client.post("/api/sessions", json={"name": name, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])


def sign_up(system: System, admin: bool = False) -> Person:
    name = f"u{uuid.uuid4().hex[:12]}"
    email = f"{name}@example.test"
    if admin:
        done = subprocess.run([sys.executable, "-m", "aidraw.cli", "user", "create", "--admin", name, email],
                              env={**system.env, "AIDRAW_ADMIN_PASSWORD": PASSWORD}, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        user_id = int(done.stdout.rsplit("(id ", 1)[1].rstrip(")\n"))
    else:
        with system.client() as client:
            answer = client.post("/api/users", json={"name": name, "email": email, "password": PASSWORD})
            assert answer.status_code == 201, answer.text
            user_id = int(answer.json()["id"])
    return Person(user_id, name, _log_in(system, name))


def client_of(system: System, person: Person | None) -> httpx.Client:
    return system.client(person.token if person else None)


@dataclass(frozen=True)
class People:
    """Two users and an admin: enough to show owner, other user, admin and anonymous (None)."""

    alice: Person
    bob: Person
    admin: Person


def make_people(system: System) -> People:
    return People(sign_up(system), sign_up(system), sign_up(system, admin=True))


def assert_problem(response: httpx.Response, status: int) -> dict:
    """An error answer: the status, as problem+json with a title and a detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)
