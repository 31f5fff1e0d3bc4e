"""Operations endpoints and the replay tools (`aidraw rebuild`, `aidraw audit`) against a serving system."""

from __future__ import annotations

import contextlib
import queue
import subprocess
import sys
import threading
import time
import uuid

import psycopg

from tests.accounts import new_account
from tests.image_support import eventually
from tests.system import System


def cli(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aidraw.cli", *args], env=system.env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_health_readiness_and_metrics(system: System) -> None:
    with system.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert checks["nats"] == "ok" and checks["postgres"] == "ok"
        assert {"tags", "users"} <= set(checks["projections"])
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        assert 'aidraw_projection_lag_events{projection="tags"}' in text
        assert 'aidraw_projection_lag_seconds{projection="tags"}' in text
        assert "aidraw_http_request_duration_seconds_bucket" in text
        assert "aidraw_event_log_last_sequence" in text
        assert client.get("/openapi.json").json()["info"]["title"] == "aidraw"
        assert "swagger" in client.get("/docs").text.lower()


def test_background_work_queues_show_in_readiness_and_metrics(system: System) -> None:
    def queues() -> dict:
        with system.client() as client:
            return dict(client.get("/readyz").json()["checks"].get("work_queues", {}))

    assert eventually(lambda: {"account_deletions", "blob_reaper", "training_requests"} <= set(queues()))
    # An account deletion that cannot proceed yet (its sequence is beyond the log): it waits, and shows.
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.account_deletion_queue (user_id, sequence, queued_at)"
                     " VALUES (424242, 999999999, now() - interval '1 hour')")
        try:
            waiting = queues()["account_deletions"]
            assert waiting["queued"] == 1 and waiting["oldest_seconds"] >= 3600
            with system.client() as client:
                text = client.get("/metrics").text
            assert 'aidraw_work_queued{queue="account_deletions"} 1.0' in text
            assert 'aidraw_work_oldest_seconds{queue="account_deletions"}' in text
        finally:
            conn.execute("DELETE FROM public.account_deletion_queue WHERE user_id = 424242")


def test_rebuild_while_serving_gives_the_same_rows_and_keeps_serving(system: System) -> None:
    owner = new_account(system, "rebuilder")
    with system.client(owner.token) as client:
        ids = [client.post("/api/tags", json={"name": f"rb-{uuid.uuid4().hex[:8]}"}).json()["id"] for _ in range(20)]
        client.patch(f"/api/tags/{ids[0]}", json={"name": f"rb-renamed-{uuid.uuid4().hex[:6]}"})
        client.delete(f"/api/tags/{ids[1]}")
        before = client.get("/api/tags", params={"q": "rb-", "pageSize": 100}).json()
    result = cli(system, "rebuild", "tags")
    assert result.returncode == 0, result.stderr
    assert "identical to the live copy" in result.stdout
    with system.client(owner.token) as client:
        after = client.get("/api/tags", params={"q": "rb-", "pageSize": 100}).json()
        assert after["list"] == before["list"] and after["total"] == 19
        # The live projector goes on after the swap.
        new = client.post("/api/tags", json={"name": f"rb-after-{uuid.uuid4().hex[:6]}"}).json()
        assert client.get(f"/api/tags/{new['id']}").status_code == 200


def test_unknown_projection_is_a_clear_error(system: System) -> None:
    result = cli(system, "rebuild", "nonsense")
    assert result.returncode == 2 and "No projection named 'nonsense'" in result.stderr


def test_audit_prints_an_objects_history(system: System) -> None:
    owner = new_account(system, "auditor")
    with system.client(owner.token) as client:
        tag = client.post("/api/tags", json={"name": f"au-{uuid.uuid4().hex[:8]}"}).json()
        client.patch(f"/api/tags/{tag['id']}", json={"name": f"au-{uuid.uuid4().hex[:8]}"})
    result = cli(system, "audit", "tag", str(tag["id"]))
    assert result.returncode == 0, result.stderr
    assert "TagCreated" in result.stdout and "TagRenamed" in result.stdout and tag["name"] in result.stdout
    missing = cli(system, "audit", "tag", "123")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == "error: no tag with id 123 in the log."
    for wrong in ("0", "9007199254740993"):  # the HTTP API's range of ids: a message, not a traceback
        refused = cli(system, "audit", "tag", wrong)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert f"error: '{wrong}' is not an id (a positive integer below 2^53" in refused.stderr


def test_a_second_projector_says_it_waits_as_a_hot_standby(system: System) -> None:
    env = dict(system.env, AIDRAW_LOG_LEVEL="INFO", AIDRAW_LOG_JSON="false")
    standby = subprocess.Popen([sys.executable, "-m", "aidraw.cli", "projector", "tags"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in standby.stderr or ():
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        # The system's projector holds the lock: this one waits, and says so at once.
        deadline = time.monotonic() + 20
        while not any("hot standby" in line for line in seen) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.5))
        said = [line for line in seen if "hot standby" in line]
        assert said and "tags: another instance is active" in said[0], seen
        assert standby.poll() is None  # still waiting to take over
    finally:
        standby.terminate()
        standby.wait(15)


def request_count(system: System, method: str, route: str, status: int) -> float:
    """`aidraw_http_request_duration_seconds_count` for one label set (0 before its first observation)."""
    with system.client() as client:
        text = client.get("/metrics").text
    line = f'aidraw_http_request_duration_seconds_count{{method="{method}",route="{route}",status="{status}"}} '
    return next((float(row[len(line):]) for row in text.splitlines() if row.startswith(line)), 0.0)


def test_every_answer_is_in_the_latency_histogram_by_route_template_or_unmatched(system: System) -> None:
    owner = new_account(system, "observed")
    labels = [("GET", "/api/tags/{tag_id}", 404), ("GET", "unmatched", 404), ("POST", "unmatched", 413),
              ("POST", "/api/tags", 201)]
    before = {label: request_count(system, *label) for label in labels}
    with system.client(owner.token) as client:
        assert client.get("/api/tags/987654321").status_code == 404  # a route's own 404: its template
        assert client.get("/no/such/path").status_code == 404  # no route matched
        # BodyLimit answers a declared length over the limit before routing: still measured (it is inside).
        too_large = client.post("/api/tags", content=b" " * (1024 * 1024 + 1),
                                headers={"content-type": "application/json"})
        assert too_large.status_code == 413
        assert client.post("/api/tags", json={"name": f"obs-{uuid.uuid4().hex[:8]}"}).status_code == 201
    after = {label: request_count(system, *label) for label in labels}
    assert {label: after[label] - before[label] for label in labels} == dict.fromkeys(labels, 1.0)
