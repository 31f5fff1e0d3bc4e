"""The end-to-end generation path against a bare pipeline call plus the same encoding, in the same run.

End to end: POST /api/images -> scheduler -> work queue -> `aidraw runner` (tiny model, CPU) -> stored PNG,
thumbnail and descriptor -> runner report -> TaskSucceeded, seen by polling the task every 10 ms. Baseline: a
process of its own like the runner's (its own interpreter and torch, the same torch settings: `TORCH_ENV`, the
pipeline in a worker thread) on the same tiny model, doing `PipelinePool.generate` for one request, then
`store_result` (PNG, WebP thumbnail and descriptor into a local blob store). 64x64, 20 steps.

    python -m bench.generation_e2e [--tasks 16]

Latency: the two sides take turns task by task (both see the same machine load); the added latency of a task is
its end-to-end time less the baseline's time of the task just before it (p50 and p99 over the pairs).
Throughput: all tasks sent at once through the system, then the baseline's tasks back to back (each while the
other side is idle); the ratio is system / baseline. On a shared machine, read the load averages printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from aidraw.services import NatsServer, PostgresServer
from gpu_runner.tiny_model import ensure_tiny_model
from tests.accounts import new_account
from tests.system import System

# The runner's and the baseline's torch: default thread count (the runner sets none), OpenMP threads that sleep
# instead of spinning when they wait. Measured here at load 12-14 on 2 cores, the same tiny-model call in a worker
# thread took 15-54 s with the default (spinning) policy, its two threads fighting the other load, and 0.4-0.9 s
# with PASSIVE; which of the two a process got also depended on what its main thread had run first, so without
# this both sides' figures were noise.
TORCH_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
RECIPE = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "num_inference_steps": 20,
          "scheduler": "DPMSolverMultistep"}


def baseline_worker(model: Path, blobs: Path) -> None:
    """The baseline's process: one seed per line on stdin, one line `<seconds>` per task on stdout; each call in a
    worker thread, as the runner's `asyncio.to_thread`."""
    import torch

    from gpu_runner.pipeline import GenerationRequest, GenerationResult, PipelinePool
    from gpu_runner.work_items import store_result
    from infra.storage.local import LocalBlobStore

    pool, store = PipelinePool(memory_budget_bytes=2**30), LocalBlobStore(blobs)

    def one(seed: int) -> float:
        start = time.perf_counter()
        request = GenerationRequest(key="k", prompt=str(RECIPE["prompt"]), negative_prompt="", steps=20,
                                    guidance_scale=7.5, scheduler="DPMSolverMultistep", seed=seed,
                                    width=64, height=64, base=model, base_name="tiny")
        [result] = pool.generate([request], on_step=lambda _r: None, is_canceled=lambda _k: False)
        assert isinstance(result, GenerationResult)
        store_result(store, result)
        return time.perf_counter() - start

    with ThreadPoolExecutor(1) as worker:
        print(f"ready {worker.submit(torch.get_num_threads).result()}", flush=True)
        for line in sys.stdin:
            print(f"{worker.submit(one, int(line)).result():.6f}", flush=True)


class Baseline:
    """The baseline's process, asked for one task at a time."""

    def __init__(self, model: Path, blobs: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.generation_e2e", "--baseline-worker", str(model), str(blobs)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, env=dict(os.environ, **TORCH_ENV))
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        self.threads = int(self.stdout.readline().split()[1])

    def run(self, seed: int) -> float:
        self.stdin.write(f"{seed}\n")
        self.stdin.flush()
        return float(self.stdout.readline())

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(30)


def _wait(client: httpx.Client, task_id: int) -> None:
    while client.get(f"/api/tasks/{task_id}").json()["status"] != "success":
        time.sleep(0.01)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Figures:
    e2e: list[float]  # per task, one at a time
    baseline: list[float]  # per task, each just before its end-to-end turn
    system_burst: float  # seconds for all tasks sent at once
    baseline_burst: float  # seconds for the same number back to back


def measure(system: System, token: str, tasks: int, bare: Baseline) -> Figures:
    with httpx.Client(base_url=system.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        def one(seed: int) -> float:
            start = time.perf_counter()
            _wait(client, client.post("/api/images", json={**RECIPE, "seed": seed}).json()["id"])
            return time.perf_counter() - start

        one(0), bare.run(0)  # warm: both have the model loaded
        e2e, baseline = [], []
        for seed in range(tasks):
            baseline.append(bare.run(seed))
            e2e.append(one(seed))
        start = time.perf_counter()
        ids = [client.post("/api/images", json={**RECIPE, "seed": s}).json()["id"] for s in range(tasks)]
        for task_id in ids:
            _wait(client, task_id)
        system_burst = time.perf_counter() - start
    start = time.perf_counter()
    for seed in range(tasks):
        bare.run(seed)
    return Figures(e2e, baseline, system_burst, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=16)  # at most the per-user cap of unfinished tasks (20)
    parser.add_argument("--baseline-worker", nargs=2, metavar=("MODEL", "BLOBS"))  # internal: its own process
    args = parser.parse_args()
    if args.baseline_worker:
        baseline_worker(Path(args.baseline_worker[0]), Path(args.baseline_worker[1]))
        return
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="aidraw-bench-") as folder:
        root = Path(folder)
        nats = NatsServer(root / "nats").start()
        pg = PostgresServer(root / "pg", fast_unsafe=True).start()
        system = System(nats.url, pg.create_database("bench_e2e"), "BENCHGEN", root / "system", runner=True,
                        extra_env={"AIDRAW_RUNNER_BATCH_SIZE": "1", **TORCH_ENV}).start()
        bare: Baseline | None = None
        try:
            token = new_account(system, "bench").token
            bare = Baseline(ensure_tiny_model(root / "system" / "models" / "tiny"), root / "baseline")
            got = measure(system, token, args.tasks, bare)
        finally:
            if bare is not None:
                bare.close()
            system.stop()
            pg.stop()
            nats.stop()
    load_after = os.getloadavg()
    e2e, base = got.e2e, got.baseline
    added = [a - b for a, b in zip(e2e, base, strict=True)]
    system_tps, bare_tps = args.tasks / got.system_burst, args.tasks / got.baseline_burst
    print(f"tasks: {args.tasks}, 64x64, 20 steps, DPMSolverMultistep, tiny model, CPU; torch threads "
          f"{bare.threads} (torch's default) and {TORCH_ENV} on both sides")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} ({os.cpu_count()} cores)")
    print(f"bare pipeline + encoding (own process), per task: p50 {statistics.median(base) * 1000:.0f} ms, "
          f"p99 {_quantile(base, 0.99) * 1000:.0f} ms")
    print(f"end to end (POST -> success), one at a time: p50 {statistics.median(e2e) * 1000:.0f} ms, "
          f"p99 {_quantile(e2e, 0.99) * 1000:.0f} ms")
    print(f"added per task (end to end - the baseline's turn before it): p50 {statistics.median(added) * 1000:.0f} "
          f"ms, p99 {_quantile(added, 0.99) * 1000:.0f} ms")
    print(f"throughput: end to end {system_tps:.2f} tasks/s (all sent at once), bare {bare_tps:.2f} tasks/s "
          f"(back to back); ratio {system_tps / bare_tps:.2f}")


if __name__ == "__main__":
    main()
