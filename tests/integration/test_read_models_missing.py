"""Before the projectors have created their tables, queries answer 503 with Retry-After, never 500."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from aidraw.services import NatsServer, PostgresServer, free_port
from tests.system import System


def test_queries_before_any_projector_ran_are_503_not_500(
    nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path
) -> None:
    url = postgres_server.create_database(f"empty_{os.getpid()}")
    system = System(nats_server.url, url, f"EMPTY{os.getpid()}", servers_dir / "empty", port=free_port())
    system.data_dir.mkdir(parents=True, exist_ok=True)
    system.start_role("api")  # no projector: no read-model tables
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(system.url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, system.log("api")
                time.sleep(0.1)
        for path in ("/api/tags", "/api/images", "/api/choices", "/api/users", "/api/models", "/api/images/1"):
            response = httpx.get(system.url + path, timeout=10)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["retry-after"] == "2"
    finally:
        system.stop()
