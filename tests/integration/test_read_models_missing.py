"""Read models exist once the migration step has run, before any projector: queries then answer from empty
tables (200, an empty page; 404 for an object). Before it, an API answers 503 with Retry-After, never 500."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from aidraw.services import NatsServer, PostgresServer, free_port
from tests.system import System

LISTS = ("/api/tags", "/api/images", "/api/choices", "/api/users", "/api/models", "/api/params", "/api/datasets")


def _wait_healthy(system: System) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(system.url + "/healthz", timeout=1)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, system.log("api")
            time.sleep(0.1)


def test_after_migrate_and_before_any_projector_queries_answer_from_empty_read_models(
    nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path
) -> None:
    url = postgres_server.create_database(f"empty_{os.getpid()}")
    system = System(nats_server.url, url, f"EMPTY{os.getpid()}", servers_dir / "empty", port=free_port())
    system.data_dir.mkdir(parents=True, exist_ok=True)
    system.start_role("api")  # no projector, and nothing migrated yet
    try:
        _wait_healthy(system)
        before = httpx.get(system.url + "/api/tags", timeout=10)
        assert before.status_code == 503, before.text
        assert before.headers["content-type"].startswith("application/problem+json")
        assert before.headers["retry-after"] == "2" and "aidraw migrate" in before.json()["detail"]

        migrated = subprocess.run([sys.executable, "-m", "aidraw.cli", "migrate"], env=system.env,
                                  capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr
        for path in LISTS:
            response = httpx.get(system.url + path, timeout=10)
            assert response.status_code == 200, (path, response.text)
            assert response.json()["list"] == [] and response.json()["total"] == 0, (path, response.text)
        missing = httpx.get(system.url + "/api/images/1", timeout=10)
        assert missing.status_code == 404, missing.text
    finally:
        system.stop()
