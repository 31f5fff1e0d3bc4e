"""Peak memory of an `aidraw api` process under N parallel decompression-bomb uploads. Prints figures, asserts
nothing.

    .venv/bin/python -m bench.upload_memory [--side 6300] [--counts 8,32] [--baseline-counts 8]

The bomb is the hardening issue's: a PNG of side x side black RGB pixels (113 KB at 6300). For each count, a
fresh API process (so its peak starts clean) takes one small upload to warm up, then N bombs at once; the figure
is its peak RSS growth (VmHWM in /proc) over that. `bounded` is the default decode pool (AIDRAW_DECODE_MEMORY
512 MiB) with AIDRAW_UPLOAD_MAX_PIXELS raised to 40 M so that the bomb is accepted, and a wait long enough that
every upload is served; `unbounded` (the baseline) is the same decoder with the pool opened wide (a budget of
1 TiB, 64 threads). The per-user limit is set to N in both: one account sends every bomb.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx

from aidraw.services import NatsServer, PostgresServer
from tests.accounts import new_account
from tests.image_files import picture, upload
from tests.system import System
from tests.unit.test_media import real_png_bomb

MIB = 1024 * 1024
CONFIGS = {
    "bounded": {"AIDRAW_DECODE_WAIT": "3600"},
    "unbounded": {"AIDRAW_DECODE_MEMORY": str(1 << 40), "AIDRAW_DECODE_WORKERS": "64"},
}


def peak_rss(system: System) -> int:
    status = Path(f"/proc/{system.procs['api'].pid}/status").read_text()
    return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:"))


def one_run(nats: NatsServer, pg: PostgresServer, folder: Path, name: str, count: int, bomb: bytes) -> str:
    env = {"AIDRAW_UPLOAD_MAX_PIXELS": "40000000", "AIDRAW_UPLOADS_PER_USER": str(count), **CONFIGS[name]}
    tag = f"{name}{count}"
    system = System(nats.url, pg.create_database(f"bench_{tag}"), f"BENCH_{tag}", folder / tag,
                    extra_env=env).start()
    try:
        account = new_account(system, "bench")
        with httpx.Client(base_url=system.url, headers=account.headers, timeout=60) as client:
            assert upload(client, picture(2000, 1500)).status_code == 201
        before = peak_rss(system)
        statuses: list[int] = []

        def send() -> None:
            with httpx.Client(base_url=system.url, headers=account.headers, timeout=3600) as client:
                statuses.append(upload(client, bomb, "bomb.png").status_code)

        started = time.perf_counter()
        threads = [threading.Thread(target=send) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        growth = (peak_rss(system) - before) / MIB
        answered = ", ".join(f"{statuses.count(s)}x{s}" for s in sorted(set(statuses)))
        return f"{count:>3} | {name:<9} | {growth:>15.0f} | {seconds:>6.1f} | {answered}"
    finally:
        system.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=6300)
    parser.add_argument("--counts", default="8,32")
    parser.add_argument("--baseline-counts", default="8")
    args = parser.parse_args()
    bomb = real_png_bomb(args.side, 2)
    print(f"bomb: {args.side}x{args.side} RGB PNG, {len(bomb) // 1024} KB, {args.side ** 2 * 4 / MIB:.0f} MiB "
          "decoded")
    print("  N | pool      | peak growth MiB |      s | answers")
    with tempfile.TemporaryDirectory(prefix="aidraw-bench-") as folder:
        nats = NatsServer(Path(folder) / "nats").start()
        pg = PostgresServer(Path(folder) / "pg", fast_unsafe=True).start()
        try:
            for count in [int(c) for c in args.counts.split(",")]:
                print(one_run(nats, pg, Path(folder), "bounded", count, bomb), flush=True)
                if str(count) in args.baseline_counts.split(","):
                    print(one_run(nats, pg, Path(folder), "unbounded", count, bomb), flush=True)
        finally:
            pg.stop()
            nats.stop()


if __name__ == "__main__":
    main()
