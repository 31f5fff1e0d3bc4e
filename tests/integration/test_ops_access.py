"""Operators' endpoints with AIDRAW_OPS_TOKEN set: `/metrics` and the detail of `/readyz` need that bearer
token; `/healthz` and the status of `/readyz` stay open to every probe, whatever token it sends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aidraw.services import NatsServer, PostgresServer
from tests.accounts import new_account, system_with
from tests.catalog_accounts import assert_problem
from tests.system import System

OPS_TOKEN = "ops-" + "7f3a9c" * 6


@pytest.fixture(scope="module")
def guarded(nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path) -> Iterator[System]:
    with system_with(nats_server, postgres_server, servers_dir, AIDRAW_OPS_TOKEN=OPS_TOKEN) as system:
        yield system


def get(system: System, path: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=system.url, headers=headers, timeout=30) as client:
        return client.get(path)


def test_metrics_and_readiness_detail_are_for_the_operators_token_only(guarded: System) -> None:
    user = new_account(guarded, "curious")
    operator = {"Authorization": f"Bearer {OPS_TOKEN}"}
    metrics = get(guarded, "/metrics", operator)
    assert metrics.status_code == 200 and "aidraw_projection_lag_events" in metrics.text
    ready = get(guarded, "/readyz", operator).json()
    assert ready["status"] == "ready" and ready["checks"]["nats"] == "ok"
    others: list[dict[str, str]] = [{}, user.headers, {"token": user.token}, {"Authorization": "Bearer wrong"},
                                    {"Authorization": f"Basic {OPS_TOKEN}"}, {"Authorization": f"Bearer {OPS_TOKEN}x"}]
    for headers in others:
        problem = assert_problem(get(guarded, "/metrics", headers), 401)
        assert "AIDRAW_OPS_TOKEN" in problem["detail"] and OPS_TOKEN not in problem["detail"]
        status_only = get(guarded, "/readyz", headers)
        assert (status_only.status_code, status_only.json()) == (200, {"status": "ready"}), headers
        health = get(guarded, "/healthz", headers)
        assert (health.status_code, health.json()) == (200, {"status": "ok"}), headers


def test_the_token_never_reaches_the_log(guarded: System) -> None:
    get(guarded, "/metrics", {"Authorization": f"Bearer {OPS_TOKEN}"})
    assert OPS_TOKEN not in guarded.log("api")
