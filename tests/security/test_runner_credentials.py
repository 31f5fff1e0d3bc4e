"""A runner on another machine logs in to NATS as the `runner` user of deploy/nats-auth.conf (the file compose
mounts): with it a real `aidraw runner` takes a task, runs it, reports it and heartbeats, so the task succeeds and
the runner shows online; and the same credentials cannot write a task's events, create a stream, or fake a
projector's announcement (docs/runners.md)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import StreamConfig

from aidraw.services import NatsServer, free_port
from tests.accounts import new_account
from tests.catalog_accounts import client_of
from tests.image_support import eventually
from tests.system import System

AUTH_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nats-auth.conf"
SERVICE_PW, RUNNER_PW = secrets.token_hex(16), secrets.token_hex(16)


@pytest.fixture(scope="module")
def nats_with_users(servers_dir: Path) -> Iterator[int]:
    """A nats-server of its own, configured as compose configures its cluster: the users and permissions of
    deploy/nats-auth.conf, passwords from the server's environment."""
    folder = servers_dir / f"nats-auth-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(AUTH_CONF, folder / "nats-auth.conf")
    port = free_port()
    (folder / "nats.conf").write_text(
        f"listen: 127.0.0.1:{port}\njetstream {{\n  store_dir: {str(folder / 'js')!r}\n  sync_interval: always\n}}\n"
        'include "nats-auth.conf"\n')
    env = {**os.environ, "AIDRAW_NATS_PASSWORD": SERVICE_PW, "AIDRAW_NATS_RUNNER_PASSWORD": RUNNER_PW}
    with (folder / "nats.log").open("ab") as log:
        proc = subprocess.Popen([NatsServer.binary(), "-c", str(folder / "nats.conf")], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (folder / "nats.log").read_text()
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def system(nats_with_users: int, postgres_server: Any, servers_dir: Path) -> Iterator[System]:
    """The services as the `aidraw` user; the stream and prefix the permissions are written for."""
    number = os.getpid() * 1000 + 953
    url = postgres_server.create_database(f"creds_{number}")
    sut = System(f"nats://aidraw:{SERVICE_PW}@127.0.0.1:{nats_with_users}", url, "AIDRAW",
                 servers_dir / f"creds-{number}", extra_env={"AIDRAW_RUNNER_TTL": "3"}).start()
    yield sut
    sut.stop()


def runner_url(port: int) -> str:
    return f"nats://runner:{RUNNER_PW}@127.0.0.1:{port}"


def test_a_runner_with_its_own_credentials_runs_a_task_and_shows_online(system: System,
                                                                        nats_with_users: int) -> None:
    user = new_account(system, "remote")
    env = {**system.env, "AIDRAW_NATS_URL": runner_url(nats_with_users), "AIDRAW_RUNNER_NAME": "remote-gpu"}
    with (system.data_dir / "remote-runner.log").open("ab") as log:
        runner = subprocess.Popen([sys.executable, "-m", "aidraw.cli", "runner"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        with client_of(system, user) as client:
            answer = client.post("/api/images", json={"prompt": "a lighthouse", "width": 64, "height": 64,
                                                      "num_inference_steps": 3, "scheduler": "DDIM"})
            assert answer.status_code == 202, answer.text
            task_id = answer.json()["id"]
            done = lambda: client.get(f"/api/tasks/{task_id}").json()  # noqa: E731
            assert eventually(lambda: done()["status"] == "success", timeout=120), (
                done(), (system.data_dir / "remote-runner.log").read_text()[-3000:])
            assert done()["server_name"] == "remote-gpu"
            listed = client.get("/api/servers").json()["list"]
            assert [(s["name"], s["status"]) for s in listed] == [("remote-gpu", "online")]
    finally:
        runner.terminate()
        runner.wait(15)
    assert "permissions violation" not in (system.data_dir / "remote-runner.log").read_text().lower()


def test_runner_credentials_cannot_write_a_task_s_events_or_change_streams(system: System,
                                                                          nats_with_users: int) -> None:
    async def attempt() -> None:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        nc = await nats.connect(runner_url(nats_with_users), error_cb=on_error)
        js = nc.jetstream(timeout=2)
        forged = json.dumps({"image_ids": [1], "prompt_handling": "whole"}).encode()
        with pytest.raises(nats.errors.TimeoutError):  # refused by the server: no stream ever answers
            await js.publish("aidraw.task.4242", forged, headers={"Es-Topic": "events.tasks:TaskSucceeded"})
        with pytest.raises(nats.errors.TimeoutError):
            await js.add_stream(StreamConfig(name="EVIL", subjects=["evil.>"]))
        with pytest.raises(nats.errors.TimeoutError):
            await js.publish("aidraw.user.1", b"{}")
        await nc.publish("aidraw_changed.tasks", b"{}")  # a projector's announcement: refused too
        await nc.flush()
        await asyncio.sleep(0.2)
        await nc.close()
        assert sum("permissions violation" in e.lower() for e in errors) >= 4, errors

        service = await nats.connect(system.nats_url)
        info = await service.jetstream().stream_info("AIDRAW", subjects_filter="aidraw.task.4242")
        assert not info.state.subjects  # nothing reached the log
        assert "EVIL" not in [s.config.name for s in await service.jetstream().streams_info()]
        await service.close()

    asyncio.run(attempt())
