"""Read-your-writes when the projections cannot keep up: the answer comes after the bound, marked stale."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from aidraw.services import NatsServer, PostgresServer
from tests.accounts import Account, new_account, system_with
from tests.image_support import wait_projected
from tests.system import System


@pytest.fixture(scope="module")
def system(nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path) -> Iterator[System]:
    with system_with(nats_server, postgres_server, servers_dir, AIDRAW_READ_YOUR_WRITES_TIMEOUT="0.5") as sut:
        yield sut


@pytest.fixture(scope="module")
def writer(system: System) -> Account:
    return new_account(system, "writer")


def test_a_paused_projector_gives_stale_answers_after_the_bound_then_fresh_ones(system: System,
                                                                                writer: Account) -> None:
    projector = system.procs["projector"]
    name = f"ryw-{uuid.uuid4().hex[:8]}"
    with system.client(writer.token) as client:
        projector.send_signal(signal.SIGSTOP)
        try:
            created = client.post("/api/tags", json={"name": name})
            assert created.status_code == 201, created.text
            tag_id = created.json()["id"]
            started = time.monotonic()
            listed = client.get("/api/tags", params={"q": name})
            assert time.monotonic() - started >= 0.5  # it waited for the bound
            assert listed.status_code == 200 and listed.headers["X-Consistency"] == "stale"
            assert listed.json()["total"] == 0
            detail = client.get(f"/api/tags/{tag_id}")
            assert detail.status_code == 404 and detail.headers["X-Consistency"] == "stale"
        finally:
            projector.send_signal(signal.SIGCONT)
        wait_projected(system, created.headers["X-Event-Sequence"])
        listed = client.get("/api/tags", params={"q": name})
        assert "X-Consistency" not in listed.headers and listed.json()["total"] == 1
        detail = client.get(f"/api/tags/{tag_id}")
        assert detail.status_code == 200 and "X-Consistency" not in detail.headers


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 40, "+5", ""])
def test_a_malformed_sequence_header_is_422(system: System, value: str) -> None:
    with system.client() as client:
        answer = client.get("/api/tags", headers={"X-Event-Sequence": value})
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["loc"] == ["header", "X-Event-Sequence"]
