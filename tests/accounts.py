"""Accounts for tests: sign up, log in, and admins made by the `aidraw user create --admin` code (the real command
process where a test asks for it)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import httpx

from aidraw.cli import _user_create
from aidraw.services import NatsServer, PostgresServer
from infra.settings import Settings
from tests.system import System

PASSWORD = "correct horse battery staple"


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Account:
    id: int
    name: str
    email: str
    password: str
    token: str
    session_id: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def sign_up(system: System, name: str | None = None, email: str | None = None,
            password: str = PASSWORD) -> httpx.Response:
    name = name or unique_name()
    email = email or f"{name}@example.com"
    with system.client() as client:
        return client.post("/api/users", json={"name": name, "email": email, "password": password})


def log_in(system: System, password: str = PASSWORD, **who: str) -> httpx.Response:
    with system.client() as client:
        return client.post("/api/sessions", json={**who, "password": password})


def new_account(system: System, prefix: str = "user", password: str = PASSWORD) -> Account:
    name = unique_name(prefix)
    email = f"{name}@example.com"
    created = sign_up(system, name, email, password)
    assert created.status_code == 201, created.text
    session = log_in(system, password, name=name)
    assert session.status_code == 201, session.text
    body = session.json()
    return Account(created.json()["id"], name, email, password, body["token"], body["id"])


def create_admin_by_command(system: System, name: str, email: str, password: str = PASSWORD) -> None:
    """The first admin as an operator makes one: the real `aidraw user create --admin` process."""
    done = subprocess.run([sys.executable, "-m", "aidraw.cli", "user", "create", "--admin", name, email],
                          env={**system.env, "AIDRAW_ADMIN_PASSWORD": password}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created admin "), done.stdout


def new_admin(system: System, password: str = PASSWORD, by_command: bool = False) -> Account:
    """An admin, logged in. By default the command's own code makes it in this process (a new process per admin
    costs a second or two of imports, and most modules make one); `by_command` runs the real process."""
    name = unique_name("admin")
    email = f"{name}@example.com"
    if by_command:
        create_admin_by_command(system, name, email, password)
    else:
        with mock.patch.dict(os.environ, {**system.env, "AIDRAW_ADMIN_PASSWORD": password}, clear=True):
            settings = Settings.from_env()
        with contextlib.redirect_stdout(io.StringIO()) as said:
            assert _user_create(settings, name, email, admin=True) == 0
        assert said.getvalue().startswith("created admin "), said.getvalue()
    session = log_in(system, password, name=name)
    assert session.status_code == 201, session.text
    body = session.json()
    return Account(body["user"]["id"], name, email, password, body["token"], body["id"])


@contextlib.contextmanager
def system_with(nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path,
                **env: str) -> Iterator[System]:
    """A system of its own (own stream, own database) started with extra settings, e.g. short session TTLs."""
    tag = uuid.uuid4().hex[:8]
    url = postgres_server.create_database(f"acc_{tag}")
    sut = System(nats_server.url, url, f"ACC{tag}", servers_dir / f"acc-{tag}", extra_env=env).start()
    try:
        yield sut
    finally:
        sut.stop()
