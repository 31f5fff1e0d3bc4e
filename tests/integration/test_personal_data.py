"""Personal data: never in plaintext in the log or the logs, and erased for good when an account is deleted
(crypto-shredding), with rebuilds still working afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import psycopg
import pytest

from aidraw.services import NatsServer, PostgresServer
from tests.accounts import PASSWORD, log_in, new_account, new_admin, system_with
from tests.system import System


@pytest.fixture(scope="module")
def chatty(nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path) -> Iterator[System]:
    """A system logging at DEBUG, so that every log line a request can cause is there to be searched."""
    with system_with(nats_server, postgres_server, servers_dir, AIDRAW_LOG_LEVEL="DEBUG") as sut:
        yield sut


def stream_messages(system: System) -> list[bytes]:
    """Every message of the system's stream as one blob each: subject, headers and body."""

    async def read() -> list[bytes]:
        nc = await nats.connect(system.nats_url)
        try:
            js = nc.jetstream()
            last = (await js.stream_info(system.stream)).state.last_seq
            found = []
            for seq in range(1, last + 1):
                msg = await js.get_msg(system.stream, seq)
                headers = "".join(f"{k}:{v}\n" for k, v in (msg.headers or {}).items())
                found.append(f"{msg.subject}\n{headers}".encode() + (msg.data or b""))
            return found
        finally:
            await nc.close()

    return asyncio.run(read())


def test_no_password_token_email_or_name_appears_in_the_log_or_the_logs(chatty: System) -> None:
    ann, admin = new_account(chatty, "ann"), new_admin(chatty)
    second = log_in(chatty, email=ann.email.upper()).json()["token"]
    new_password = "the second secret password"
    with chatty.client(ann.token) as client:
        changed = client.patch("/api/account", json={"password": new_password, "old_password": PASSWORD,
                                                     "email": f"new-{ann.email}", "name": f"new-{ann.name}"})
        assert changed.status_code == 200, changed.text
        log_in(chatty, "a wrong password guess", name=ann.name)
        client.get("/api/sessions")
    with chatty.client(admin.token) as client:
        assert client.get(f"/api/users/{ann.id}/events").status_code == 200
    secrets = [PASSWORD, new_password, "a wrong password guess", ann.token, second, admin.token,
               ann.token.split(".")[1], second.split(".")[1], ann.email, f"new-{ann.email}", admin.email,
               ann.name, f"new-{ann.name}", admin.name]
    messages = stream_messages(chatty)
    assert len(messages) >= 8
    logs = [(chatty.data_dir / f"{role}.log").read_bytes() for role in ("api", "projector")]
    for blob in [*messages, *logs]:
        lowered = blob.lower()
        for secret in secrets:
            assert secret.lower().encode() not in lowered, f"{secret!r} found in {blob[:200]!r}"


def _key_count(system: System, user_id: int) -> int:
    with psycopg.connect(system.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM secrets.personal_keys WHERE user_id = %s", (user_id,)).fetchone()
    return int(row[0]) if row else 0


def _user_row(system: System, user_id: int) -> tuple:
    with psycopg.connect(system.database_url) as conn:
        row = conn.execute("SELECT name, email, role, deleted_at IS NOT NULL, erased FROM rm.users WHERE id = %s",
                           (user_id,)).fetchone()
    assert row is not None
    return tuple(row)


def test_deletion_erases_the_key_and_a_rebuild_still_succeeds(system: System) -> None:
    ann, bob, admin = new_account(system, "ann"), new_account(system, "bob"), new_admin(system)
    assert _key_count(system, ann.id) == 1
    with system.client(ann.token) as client:
        assert client.delete(f"/api/users/{ann.id}").status_code == 204
    assert _key_count(system, ann.id) == 0
    with system.client(admin.token) as client:
        trail = client.get(f"/api/users/{ann.id}/events").json()
        assert [e["type"] for e in trail] == ["UserRegistered", "UserDeleted", "UserErased"]
        assert trail[0]["data"]["email"] == "[erased]" and trail[0]["data"]["name"] == "[erased]"
        bob_trail = client.get(f"/api/users/{bob.id}/events").json()
        assert bob_trail[0]["data"]["email"] == "[sealed]"
    rebuilt = subprocess.run([sys.executable, "-m", "aidraw.cli", "rebuild", "users"], env=system.env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "identical" in rebuilt.stdout, rebuilt.stdout
    assert _user_row(system, ann.id) == (None, None, "user", True, True)
    assert _user_row(system, bob.id)[:2] == (bob.name, bob.email)
    with system.client(bob.token) as client:
        assert client.get(f"/api/users/{ann.id}").status_code == 404
        assert client.get(f"/api/users/{bob.id}").json()["email"] == bob.email
    sessions = subprocess.run([sys.executable, "-m", "aidraw.cli", "rebuild", "sessions"], env=system.env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert sessions.returncode == 0 and "identical" in sessions.stdout, sessions.stdout + sessions.stderr
