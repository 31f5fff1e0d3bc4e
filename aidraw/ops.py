"""Operations endpoints: /healthz, /readyz, /metrics (Prometheus).

They ignore user tokens (a probe or scraper sends whatever it was configured with). With AIDRAW_OPS_TOKEN set,
`/metrics` and the detail of `/readyz` (lags, queues, which server is unreachable) are for operators only:
they need `Authorization: Bearer <AIDRAW_OPS_TOKEN>`; without it `/metrics` is 401 and `/readyz` answers its
status alone. `/healthz` stays open.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool

from aidraw.bootstrap import AppServices, Services
from aidraw.restarts import read_state
from infra.errors import Unauthorized
from infra.settings import Settings

router = APIRouter(tags=["operations"])

REGISTRY = CollectorRegistry()
REQUEST_LATENCY = Histogram(
    "aidraw_http_request_duration_seconds", "HTTP request latency", ["method", "route", "status"],
    registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LAG_EVENTS = Gauge("aidraw_projection_lag_events", "Events in the log not yet projected", ["projection"],
                   registry=REGISTRY)
LAG_SECONDS = Gauge("aidraw_projection_lag_seconds", "Age of the oldest event not yet projected", ["projection"],
                    registry=REGISTRY)
POSITION = Gauge("aidraw_projection_position", "Stream sequence projected", ["projection"], registry=REGISTRY)
LOG_LAST = Gauge("aidraw_event_log_last_sequence", "Last stream sequence of the event log", registry=REGISTRY)
WORK_QUEUED = Gauge("aidraw_work_queued", "Items waiting in a background work queue", ["queue"], registry=REGISTRY)
WORK_OLDEST = Gauge("aidraw_work_oldest_seconds", "Age of the oldest item waiting in a background work queue",
                    ["queue"], registry=REGISTRY)
# The process managers' and the blob reaper's queues (public.<table>, with a queued_at column).
WORK_QUEUES = {"account_deletions": "account_deletion_queue", "blob_reaper": "blob_reap_queue",
               "training_requests": "training_requests"}


async def work_queues(services: Services) -> dict[str, dict[str, float]]:
    """Items waiting and the oldest one's age, per background queue."""
    found: dict[str, dict[str, float]] = {}
    pool: Any = services.pool  # its rows are dicts (query/db.py make_pool)
    async with pool.connection(timeout=2) as conn:
        for queue, table in WORK_QUEUES.items():
            stats = await (await conn.execute(
                f"SELECT count(*) AS n, COALESCE(extract(epoch FROM now() - min(queued_at)), 0) AS oldest"
                f" FROM public.{table}")).fetchone()
            if stats:
                found[queue] = {"queued": float(stats["n"]), "oldest_seconds": round(float(stats["oldest"]), 3)}
    return found


def projection_lag(services: Services) -> dict[str, dict[str, float]]:
    """Events and seconds behind, per projection (blocking: reads the stream's state)."""
    event_log = services.event_log
    watcher = services.watcher
    last = event_log.last_sequence()
    lag: dict[str, dict[str, float]] = {}
    for name in watcher.projections:
        pos = watcher.positions.get(name, 0)
        behind = max(0, last - pos)
        seconds = 0.0
        if behind:
            stamp = event_log.message_time(pos + 1)
            seconds = max(0.0, time.time() - stamp) if stamp else 0.0
        lag[name] = {"position": pos, "events": behind, "seconds": round(seconds, 3), "log_last": last}
    return lag


def is_operator(request: Request, settings: Settings) -> bool:
    """Whether the caller may see operators' detail: anyone while AIDRAW_OPS_TOKEN is unset."""
    wanted = settings.ops_token
    if not wanted:
        return True
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), wanted.encode())


@router.get("/healthz", include_in_schema=True)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, services: AppServices) -> Response:
    """NATS and PostgreSQL reachable, projections caught up within AIDRAW_READY_MAX_LAG events (the checks
    themselves: for operators, when AIDRAW_OPS_TOKEN is set)."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        lag = await run_in_threadpool(projection_lag, services)
        checks["nats"] = "ok"
        checks["projections"] = lag
        limit = services.settings.ready_max_lag_events
        if any(v["events"] > limit for v in lag.values()):
            ok = False
    except Exception as exc:
        checks["nats"] = f"unreachable: {exc.__class__.__name__}"
        ok = False
    try:
        async with services.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = "ok"
        checks["work_queues"] = await work_queues(services)
    except Exception as exc:
        checks["postgres"] = f"unreachable: {exc.__class__.__name__}"
        ok = False
    supervised = read_state()
    if supervised is not None:  # under `aidraw run`: its parts, restarts and how each last ended (informational)
        checks["supervisor"] = supervised.get("parts", {})
    body: dict[str, Any] = {"status": "ready" if ok else "not ready"}
    if is_operator(request, services.settings):
        body["checks"] = checks
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, services: AppServices) -> Response:
    """Prometheus metrics: request latency, projection lag, log position, background work queues, the generation
    queue (tasks waiting and running per capability, wait and run times); with AIDRAW_OPS_TOKEN set, for that
    bearer token only."""
    if not is_operator(request, services.settings):
        raise Unauthorized("The metrics are for operators: send Authorization: Bearer <AIDRAW_OPS_TOKEN>.")
    try:
        lag = await run_in_threadpool(projection_lag, services)
    except Exception:
        lag = {}
    for name, values in lag.items():
        LAG_EVENTS.labels(name).set(values["events"])
        LAG_SECONDS.labels(name).set(values["seconds"])
        POSITION.labels(name).set(values["position"])
        LOG_LAST.set(values["log_last"])
    try:
        queues = await work_queues(services)
    except Exception:
        queues = {}
    for queue, stats in queues.items():
        WORK_QUEUED.labels(queue).set(stats["queued"])
        WORK_OLDEST.labels(queue).set(stats["oldest_seconds"])
    from aidraw import task_metrics  # it registers on this module's registry

    with contextlib.suppress(Exception):  # metrics of what can be read; never a failed scrape
        await task_metrics.update(services.pool)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
