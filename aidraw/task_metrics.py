"""The generation queue in /metrics, read from the tasks read model at each scrape: tasks waiting and running
per capability, and wait (created -> started) and run (started -> finished) times over the last hour."""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge
from psycopg_pool import AsyncConnectionPool

from aidraw.ops import REGISTRY

WAITING = Gauge("aidraw_tasks_waiting", "Tasks waiting for a runner", ["capability"], registry=REGISTRY)
RUNNING = Gauge("aidraw_tasks_running", "Tasks running", ["capability"], registry=REGISTRY)
WAIT = Gauge("aidraw_task_wait_seconds", "Wait from request to start, tasks started in the last hour",
             ["capability", "quantile"], registry=REGISTRY)
RUN = Gauge("aidraw_task_run_seconds", "Run time, tasks that succeeded in the last hour", ["capability", "quantile"],
            registry=REGISTRY)
QUANTILES = ("0.5", "0.95")

DEPTH = ("SELECT COALESCE(capability, 'training') AS capability, count(*) FILTER (WHERE status = 'waiting') AS"
         " waiting, count(*) FILTER (WHERE status = 'running') AS running FROM rm.tasks WHERE status IN"
         " ('waiting', 'running') GROUP BY 1")
TIMES = ("SELECT capability, percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY extract(epoch FROM {span}))"
         " AS q FROM rm.tasks WHERE {where} AND capability IS NOT NULL GROUP BY capability")


async def update(pool: AsyncConnectionPool) -> None:
    """Set the gauges (left as they were when the read model cannot be read)."""
    async with pool.connection(timeout=2) as conn:
        depth: list[Any] = await (await conn.execute(DEPTH)).fetchall()
        waits: list[Any] = await (await conn.execute(TIMES.format(
            span="started_at - created_at", where="started_at > now() - interval '1 hour'"))).fetchall()
        runs: list[Any] = await (await conn.execute(TIMES.format(
            span="finished_at - started_at",
            where="status = 'success' AND finished_at > now() - interval '1 hour'"))).fetchall()
    for gauge in (WAITING, RUNNING, WAIT, RUN):
        gauge.clear()
    for row in depth:
        WAITING.labels(row["capability"]).set(row["waiting"])
        RUNNING.labels(row["capability"]).set(row["running"])
    for gauge, rows in ((WAIT, waits), (RUN, runs)):
        for row in rows:
            for quantile, value in zip(QUANTILES, row["q"], strict=True):
                gauge.labels(row["capability"], quantile).set(round(float(value), 3))
