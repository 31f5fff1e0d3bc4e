"""`aidraw run` under a write load, each of its parts SIGKILLed in turn (the projector, the API, the embedded NATS
server, the embedded PostgreSQL): the supervisor restarts each by itself, reads are served while the projector
is away, every acknowledged write is in the log once, and the read model equals a rebuild from the log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from aidraw.services import free_port
from tests.write_load import (
    TagWriter,
    assert_each_acknowledged_write_once,
    assert_read_model_equals_rebuild,
    close_bridge,
    wait_projected,
)

STREAM = "AIDRAW"  # the default deployment's


def supervised(data: Path) -> dict[str, Any]:
    parts: dict[str, Any] = json.loads((data / "run" / "supervisor.json").read_text())["parts"]
    return parts


def wait_restarted(data: Path, part: str, restarts: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while (state := supervised(data)[part])["restarts"] < restarts or state["state"] != "running":
        assert time.monotonic() < deadline, f"{part} was not restarted: {state}"
        time.sleep(0.1)


def sign_up_and_log_in(url: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        created = client.post("/api/users", json={"name": "ada", "email": "ada@example.org",
                                                  "password": "correct horse"})
        assert created.status_code == 201, created.text
        session = client.post("/api/sessions", json={"name": "ada", "password": "correct horse"})
        assert session.status_code == 201, session.text
        return str(session.json()["token"])


@pytest.mark.slow
def test_aidraw_run_restarts_each_killed_part_and_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data, port = tmp_path / "var", free_port()
    url = f"http://127.0.0.1:{port}"
    # A long event-log timeout: quick refusals while NATS is away can only come from noticing that it is gone.
    env = dict(os.environ, AIDRAW_DATA_DIR=str(data), AIDRAW_PORT=str(port), AIDRAW_LOG_LEVEL="ERROR",
               AIDRAW_EVENT_LOG_TIMEOUT="30")
    for name in ("AIDRAW_NATS_URL", "AIDRAW_DATABASE_URL"):
        env.pop(name, None)
    output = tmp_path / "run.log"
    with output.open("w") as out:
        run = subprocess.Popen([sys.executable, "-m", "aidraw.cli", "run"], env=env, stdout=out,
                               stderr=subprocess.STDOUT)
    writer: TagWriter | None = None
    try:
        deadline = time.monotonic() + 60
        while not (data / "run" / "supervisor.json").exists() or _status(url) != 200:
            assert run.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        writer = TagWriter(url, sign_up_and_log_in(url)).start()
        writer.wait_for(10)
        for part in ("projector", "api", "nats", "postgres"):
            os.kill(supervised(data)[part]["pid"], signal.SIGKILL)
            if part == "projector":  # reads do not need it
                assert _status(url, "/api/tags") == 200
            wait_restarted(data, part, 1)
            writer.wait_for(10)
        writer.stop()
        assert run.poll() is None, output.read_text()
        assert writer.refused and writer.slowest_refusal_s < 5, writer.slowest_refusal_s
        assert all(retry_after == "2" for _, retry_after, _ in writer.refused)
        killed = ("nats", "postgres", "projector", "api")  # the runner, also supervised, is not killed here
        assert all(state["restarts"] == 1 and state["last_exit"] == "killed by SIGKILL"
                   for part, state in supervised(data).items() if part in killed), supervised(data)
        shown = httpx.get(url + "/readyz", timeout=5).json()["checks"]["supervisor"]
        assert {part: state["restarts"] for part, state in shown.items() if part in killed} == {
            "nats": 1, "postgres": 1, "projector": 1, "api": 1}

        recorded = json.loads((data / "run" / "endpoints.json").read_text())
        nats_url, database_url = recorded["nats_url"], recorded["database_url"]
        assert_each_acknowledged_write_once(writer, nats_url, STREAM)
        last = wait_projected(database_url, nats_url, STREAM)
        clean = database_url.rsplit("/", 1)[0] + f"/clean_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {clean.rsplit('/', 1)[1]}")
        assert_read_model_equals_rebuild(database_url, clean, nats_url, STREAM, last)
    finally:
        if writer is not None:
            writer.stop()
        endpoints = data / "run" / "endpoints.json"
        if endpoints.exists():
            close_bridge(json.loads(endpoints.read_text())["nats_url"])
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
            run.wait(60)
    said = output.read_text()
    assert run.returncode == 0, said
    for what in ("the projector process", "the api process", "the embedded NATS server", "the embedded PostgreSQL"):
        assert f"restarted {what}" in said, said


def _status(url: str, path: str = "/readyz") -> int:
    try:
        return httpx.get(url + path, timeout=5).status_code
    except httpx.HTTPError:
        return 0
