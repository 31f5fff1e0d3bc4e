"""The end-to-end generation path against a bare pipeline call plus the same encoding, in the same run.

End to end: POST /api/images -> scheduler -> work queue -> `aidraw runner` (tiny model, CPU) -> stored PNG,
thumbnail and descriptor -> runner report -> TaskSucceeded, seen by polling the task every 10 ms. Baseline, in
this process on the same tiny model: `PipelinePool.generate` for one request, then `store_result` (PNG, WebP
thumbnail and descriptor into a local blob store). 64x64, 20 steps.

    python -m bench.generation_e2e [--tasks 16]

Prints per-task latency p50 of each side (one after another, the two sides interleaved so that both see the same
load), the p50 added latency, and the throughput ratio (all tasks sent at once against the baseline's tasks one
after another). The runner is a separate process
sharing this machine's cores with the API, the projector and this script.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from aidraw.services import NatsServer, PostgresServer
from gpu_runner.pipeline import GenerationRequest, GenerationResult, PipelinePool
from gpu_runner.tiny_model import ensure_tiny_model
from gpu_runner.work_items import store_result
from infra.storage.local import LocalBlobStore
from tests.accounts import new_account
from tests.system import System

RECIPE = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "num_inference_steps": 20,
          "scheduler": "DPMSolverMultistep"}


def _wait(client: httpx.Client, task_id: int) -> None:
    while client.get(f"/api/tasks/{task_id}").json()["status"] != "success":
        time.sleep(0.01)


def end_to_end(system: System, token: str, tasks: int, bare: Callable[[int], None]
               ) -> tuple[list[float], list[float], float]:
    """Per-task latencies of both sides, interleaved (the same load on the machine), and the burst's time."""
    with httpx.Client(base_url=system.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        _wait(client, client.post("/api/images", json={**RECIPE, "seed": 0}).json()["id"])  # warm: model loaded
        bare(0)
        latencies, baseline = [], []
        for seed in range(tasks):
            start = time.perf_counter()
            bare(seed)
            baseline.append(time.perf_counter() - start)
            start = time.perf_counter()
            _wait(client, client.post("/api/images", json={**RECIPE, "seed": seed}).json()["id"])
            latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        ids = [client.post("/api/images", json={**RECIPE, "seed": s}).json()["id"] for s in range(tasks)]
        for task_id in ids:
            _wait(client, task_id)
        return latencies, baseline, time.perf_counter() - start


def bare_call(model: Path, blobs: LocalBlobStore) -> Callable[[int], None]:
    """One task's work without the system: the pipeline, then the same encoding and storing."""
    pool = PipelinePool(memory_budget_bytes=2**30)

    def one(seed: int) -> None:
        request = GenerationRequest(key="k", prompt=str(RECIPE["prompt"]), negative_prompt="", steps=20,
                                    guidance_scale=7.5, scheduler="DPMSolverMultistep", seed=seed, width=64,
                                    height=64, base=model, base_name="tiny")
        [result] = pool.generate([request], on_step=lambda _r: None, is_canceled=lambda _k: False)
        assert isinstance(result, GenerationResult)
        store_result(blobs, result)

    return one


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=16)  # at most the per-user cap of unfinished tasks (20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aidraw-bench-") as folder:
        root = Path(folder)
        nats = NatsServer(root / "nats").start()
        pg = PostgresServer(root / "pg", fast_unsafe=True).start()
        system = System(nats.url, pg.create_database("bench_e2e"), "BENCHGEN", root / "system", runner=True,
                        extra_env={"AIDRAW_RUNNER_BATCH_SIZE": "1"}).start()
        try:
            token = new_account(system, "bench").token
            model = ensure_tiny_model(root / "system" / "models" / "tiny")
            e2e, base, burst = end_to_end(system, token, args.tasks, bare_call(model, LocalBlobStore(root / "b")))
        finally:
            system.stop()
            pg.stop()
            nats.stop()
    e2e_p50, bare_p50 = statistics.median(e2e), statistics.median(base)
    print(f"tasks: {args.tasks}, 64x64, 20 steps, tiny model, CPU")
    print(f"bare pipeline + encoding, per task: p50 {bare_p50 * 1000:.1f} ms")
    print(f"end to end (POST -> success), one at a time: p50 {e2e_p50 * 1000:.1f} ms; "
          f"added p50 {(e2e_p50 - bare_p50) * 1000:.1f} ms")
    print(f"throughput: end to end {args.tasks / burst:.2f} tasks/s (all sent at once), bare "
          f"{len(base) / sum(base):.2f} tasks/s; ratio {(args.tasks / burst) / (len(base) / sum(base)):.2f}")


if __name__ == "__main__":
    main()
