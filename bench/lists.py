"""Image lists at scale: load a gallery (default one million images) through the real event path, then time a
matrix of list queries three ways in the same run, interleaved in a random order each round: through the HTTP
API, through the list engine in-process (the API's SQL without HTTP and JSON), and as plain SQL (ORDER BY +
OFFSET page and an exact count(*): what a straightforward implementation runs). Prints p50/p99 per query and
the load time; asserts nothing. Its own nats-server (`sync_interval: always`) and PostgreSQL (fsync on), under
--dir, kept for --reuse.

    .venv/bin/python -m bench.lists [--images 1000000] [--rounds 50] [--dir /tmp/aidraw-bench-lists] [--reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import psycopg

from aidraw.services import NatsServer, PostgresServer, free_port
from bench import close_nats
from bench.gallery import Loaded, load_gallery
from bench.list_queries import MATRIX, run_matrix
from command.app import CommandApp
from infra.settings import Settings
from projectors.checkpoints import wait_until_projected_sync

STREAM, PREFIX, PASSWORD = "BENCH", "bench", "bench-password-1"


def start_role(env: dict[str, str], folder: Path, role: str, *args: str) -> subprocess.Popen[bytes]:
    with open(folder / f"{role}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "aidraw.cli", role, *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("the api exited; see its log")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the api did not start")


def account(url: str, folder: Path) -> dict[str, Any]:
    """The benchmark's own user (the most prolific owner): made once, logged in every run."""
    saved = folder / "account.json"
    if not saved.exists():
        made = httpx.post(url + "/api/users", json={"name": "benchuser", "email": "bench@example.com",
                                                    "password": PASSWORD}, timeout=30)
        made.raise_for_status()
        saved.write_text(json.dumps({"id": made.json()["id"], "name": "benchuser"}))
    me = json.loads(saved.read_text())
    session = httpx.post(url + "/api/sessions", json={"name": me["name"], "password": PASSWORD}, timeout=30)
    session.raise_for_status()
    return {**me, "token": session.json()["token"]}


def wait_projected(database_url: str, sequence: int) -> None:
    while not wait_until_projected_sync(database_url, ("images", "tags"), sequence, 60, poll_s=0.5):
        pass


def load(env: dict[str, str], folder: Path, database_url: str, nats_url: str, me: int, images: int) -> Loaded:
    projector = start_role(env, folder, "projector", "images", "tags")
    started = time.perf_counter()
    app = CommandApp(Settings(stream_name=STREAM, subject_prefix=PREFIX), nats_url)
    try:
        loaded = load_gallery(app, me, images)
    finally:
        app.close()
        close_nats(nats_url)
    print(f"appended {loaded.events:,} events in {loaded.append_s:.0f} s ({loaded.events / loaded.append_s:,.0f}/s)",
          flush=True)
    wait_projected(database_url, loaded.last_sequence)
    projected = time.perf_counter() - started
    projector.terminate()
    projector.wait()
    print(f"appended and projected in {projected:.0f} s ({loaded.events / projected:,.0f} events/s)", flush=True)
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE rm.images, rm.image_counts, rm.image_likes, rm.choice_items, rm.tags")
    print(f"VACUUM ANALYZE {time.perf_counter() - started:.0f} s", flush=True)
    loaded.public_image_ids = []
    (folder / "loaded.json").write_text(json.dumps({**asdict(loaded), "projected_s": projected}))
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/aidraw-bench-lists"))
    parser.add_argument("--reuse", action="store_true", help="query the gallery a previous run loaded")
    parser.add_argument("--only", default="", help="run only the queries whose name contains this")
    args = parser.parse_args()
    folder: Path = args.dir
    if not args.reuse and folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder} is not empty: remove it, or pass --reuse")
    folder.mkdir(parents=True, exist_ok=True)
    nats = NatsServer(folder / "nats").start()
    postgres = PostgresServer(folder / "pg").start()
    api = None
    try:
        database_url = postgres.url  # kept between runs (create_database would drop it)
        port = free_port()
        env = dict(os.environ, AIDRAW_NATS_URL=nats.url, AIDRAW_DATABASE_URL=database_url, AIDRAW_STREAM=STREAM,
                   AIDRAW_SUBJECT_PREFIX=PREFIX, AIDRAW_DATA_DIR=str(folder / "var"), AIDRAW_PORT=str(port),
                   AIDRAW_LOG_LEVEL="WARNING")
        url = f"http://127.0.0.1:{port}"
        api = start_role(env, folder, "api")
        wait_healthy(url, api)
        me = account(url, folder)
        # The API remembers the login as this token's last write, and would make its reads wait for every
        # projection (read-your-writes); the benchmark runs only the images and tags ones. A new API process
        # knows no earlier writes.
        api.terminate()
        api.wait()
        api = start_role(env, folder, "api")
        wait_healthy(url, api)
        if args.reuse and (folder / "loaded.json").exists():
            loaded = Loaded(**{k: v for k, v in json.loads((folder / "loaded.json").read_text()).items()
                               if k != "projected_s"})
        else:
            loaded = load(env, folder, database_url, nats.url, me["id"], args.images)
        chosen = [bench for bench in MATRIX if args.only in bench.name]
        print(f"\n{len(chosen)} queries x {args.rounds} rounds; API, engine in-process and plain SQL interleaved"
              " (random order each round)\n")
        table = asyncio.run(run_matrix(url, database_url, me, loaded, args.rounds, chosen))
        print(table)
        (folder / "table.md").write_text(table + "\n")
    finally:
        if api is not None:
            api.terminate()
            api.wait()
        postgres.stop()
        nats.stop()


if __name__ == "__main__":
    main()
