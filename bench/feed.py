"""The live feed under load: N sockets watching M running objects, each object getting 10 progress messages/s and
2 previews/s (8 KB, incompressible) from a synthetic publisher on the feed's NATS subject. Prints figures, asserts
nothing.

    .venv/bin/python -m bench.feed [--sockets 1000] [--objects 100] [--seconds 8] [--deflate]

The API runs as its own process (the real `aidraw api`, with a projector) on a nats-server and PostgreSQL
started here; this process is the load generator (publisher and every client socket, one asyncio loop).
Figures: event-to-socket latency p50/p99 (publish -> a client has parsed it), messages/s delivered, server memory
per socket, and the CPU seconds of the server and of this generator (both share the machine's cores). Phase 1:
every socket reads. Phase 2: a tenth of the sockets stop reading: the latency of the other nine tenths beside
phase 1's shows what slow clients do to the rest. Baseline: a plain NATS subscriber in this process on the same
subject (the floor the feed adds to).
Objects are public models (the stand-in for tasks until /api/tasks lands: the feed's path is the same).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import nats
from websockets.asyncio.client import ClientConnection, connect

from aidraw.services import NatsServer, PostgresServer
from events.progress import Progress, progress_subject
from tests.accounts import new_account
from tests.system import System


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


class Load:
    def __init__(self, system: System, model_ids: list[int], sockets: int, deflate: bool) -> None:
        self.system, self.model_ids, self.n, self.deflate = system, model_ids, sockets, deflate
        self.sent: dict[tuple[int, int], float] = {}
        self.latencies: dict[int, list[float]] = {}  # per socket index
        self.received = 0
        self.slow: set[int] = set()
        self.measuring = False
        self.baseline: list[float] = []
        self.tick = 0  # one run's counter: it goes on across phases (a restart would read as duplicates)

    async def reader(self, index: int, ws: ClientConnection) -> None:
        async for raw in ws:
            while index in self.slow:
                await asyncio.sleep(0.5)
            message = json.loads(raw)
            tick = message.get("tick")
            if tick is not None and self.measuring:
                sent = self.sent.get((message["id"], tick))
                if sent is not None:
                    self.latencies.setdefault(index, []).append(time.perf_counter() - sent)
                    self.received += 1

    async def open(self) -> list[asyncio.Task[None]]:
        base = self.system.url.replace("http://", "ws://")
        readers = []
        for i in range(self.n):
            model = self.model_ids[i % len(self.model_ids)]
            ws = await connect(f"{base}/api/models/{model}", max_queue=4,
                               compression="deflate" if self.deflate else None, open_timeout=60)
            await ws.recv()  # the first state
            readers.append(asyncio.create_task(self.reader(i, ws)))
        return readers

    async def publish(self, seconds: float) -> None:
        nc = await nats.connect(self.system.nats_url)
        floor = await nc.subscribe(progress_subject(self.system.prefix, "models", self.model_ids[0]))

        async def watch_floor() -> None:
            async for msg in floor.messages:
                update = Progress.decode(msg.data)
                sent = self.sent.get((update.id, update.tick))
                if sent is not None and self.measuring:
                    self.baseline.append(time.perf_counter() - sent)

        floor_task = asyncio.create_task(watch_floor())
        preview = "data:image/jpeg;base64," + base64.b64encode(os.urandom(6000)).decode()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:  # 10 rounds a second; every fifth carries a preview
            started = time.perf_counter()
            self.tick += 1
            tick = self.tick
            for model in self.model_ids:
                update = Progress("models", model, tick, tick, 10_000, tick % 100, preview if tick % 5 == 0 else None)
                self.sent[(model, tick)] = time.perf_counter()
                await nc.publish(progress_subject(self.system.prefix, "models", model), update.encode())
            await nc.flush()
            await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - started)))
        await asyncio.sleep(1.0)  # the last ones arrive
        floor_task.cancel()
        await nc.close()

    async def phase(self, name: str, seconds: float, server_pid: int) -> None:
        self.latencies, self.received, self.baseline = {}, 0, []
        cpu_server, cpu_self, wall = proc_cpu_s(server_pid), time.process_time(), time.perf_counter()
        self.measuring = True
        await self.publish(seconds)
        self.measuring = False
        wall = time.perf_counter() - wall
        fast = [x for i, xs in self.latencies.items() if i not in self.slow for x in xs]
        print(f"{name}: sockets {self.n} ({len(self.slow)} slow), delivered {self.received / wall:,.0f} msg/s; "
              f"reading sockets' latency p50 {pct(fast, 0.5) * 1000:.1f} ms p99 {pct(fast, 0.99) * 1000:.1f} ms "
              f"(baseline, a plain NATS subscriber: p50 {pct(self.baseline, 0.5) * 1000:.1f} ms "
              f"p99 {pct(self.baseline, 0.99) * 1000:.1f} ms); CPU s/s: server "
              f"{(proc_cpu_s(server_pid) - cpu_server) / wall:.2f}, load generator "
              f"{(time.process_time() - cpu_self) / wall:.2f}")
        if self.slow:
            slow = [x for i, xs in self.latencies.items() if i in self.slow for x in xs]
            print(f"  slow sockets got {len(slow)} messages (coalesced) of "
                  f"{int(seconds * 10) * len(self.slow)} published for them")


async def run(args: argparse.Namespace, system: System) -> None:
    owner = new_account(system, "bench")
    model_ids = []
    with httpx.Client(base_url=system.url, headers={"Authorization": f"Bearer {owner.token}"}, timeout=30) as c:
        for _ in range(args.objects):
            answer = c.post("/api/models", json={"name": f"b-{uuid.uuid4().hex[:8]}", "type": "lora",
                                                 "base_model": "SD1.5", "public": True,
                                                 "data": {"oss": ["https://cdn.example.com/1.png"]}})
            answer.raise_for_status()
            model_ids.append(int(answer.json()["id"]))
        c.get("/api/models", headers={"X-Event-Sequence": answer.headers["X-Event-Sequence"]})
    server_pid = system.procs["api"].pid
    rss_before = proc_rss_mb(server_pid)
    load = Load(system, model_ids, args.sockets, args.deflate)
    opened = time.perf_counter()
    readers = await load.open()
    print(f"opened {args.sockets} sockets on {args.objects} objects in {time.perf_counter() - opened:.1f} s; "
          f"server memory {(proc_rss_mb(server_pid) - rss_before) * 1024 / args.sockets:.1f} KB per socket "
          f"(RSS {rss_before:.0f} -> {proc_rss_mb(server_pid):.0f} MB)")
    await load.phase("every socket reads", args.seconds, server_pid)
    load.slow = set(range(0, args.sockets, 10))
    await load.phase("a tenth stop reading", args.seconds, server_pid)
    print(f"load generator peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    for task in readers:
        task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--deflate", action="store_true", help="let sockets negotiate permessage-deflate")
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket each, the server too (it inherits)
    with tempfile.TemporaryDirectory() as folder:
        nats_server = NatsServer(Path(folder) / "nats").start()
        postgres = PostgresServer(Path(folder) / "pg", fast_unsafe=True).start()
        system = System(nats_server.url, postgres.create_database("feed"), "FEEDBENCH", Path(folder) / "sys",
                        extra_env={"AIDRAW_LIVE_MAX_SOCKETS_PER_USER": str(args.sockets + 10)})
        try:
            system.start()
            asyncio.run(run(args, system))
        finally:
            system.stop()
            postgres.stop()
            nats_server.stop()


if __name__ == "__main__":
    main()
