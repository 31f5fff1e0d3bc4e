"""`aidraw run`: the whole system on one machine.

Starts the embedded NATS and PostgreSQL (unless AIDRAW_NATS_URL / AIDRAW_DATABASE_URL point elsewhere), then each
role as its own child process (api, projector), prints the URL, and on Ctrl-C stops the roles first and the
servers last, so nothing acknowledged is lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aidraw.endpoints import Endpoints, record_file, save_embedded
from aidraw.services import NatsServer, PostgresServer, ServiceError, check_data_dir, port_is_free
from infra.settings import Settings


def _spawn(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "aidraw.cli", role], env=env)


def run_all(settings: Settings) -> int:
    data_dir = settings.data_dir.resolve()
    try:
        check_data_dir(data_dir)
        if not port_is_free(settings.port, settings.host):
            raise ServiceError(
                f"Port {settings.port} on {settings.host} is already in use. Stop what uses it or start with "
                f"AIDRAW_PORT=<another port> make run."
            )
        nats = pg = None
        nats_url, database_url = settings.nats_url, settings.database_url
        if not nats_url:
            print(f"starting NATS (JetStream) in {data_dir / 'nats'} ...", flush=True)
            nats = NatsServer(data_dir / "nats").start()
            nats_url = nats.url
        if not database_url:
            print(f"starting PostgreSQL in {data_dir / 'postgres'} ...", flush=True)
            pg = PostgresServer(data_dir / "postgres").start()
            database_url = pg.url
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_embedded(settings, Endpoints(nats_url, database_url))
    env = dict(os.environ, AIDRAW_NATS_URL=nats_url, AIDRAW_DATABASE_URL=database_url,
               AIDRAW_DATA_DIR=str(data_dir))
    children = {role: _spawn(role, env) for role in ("projector", "api")}
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(f"aidraw is starting on http://{settings.host}:{settings.port}  (API docs: /docs; Ctrl-C stops)",
          flush=True)
    code = 0
    try:
        while not stopping:
            for role, child in children.items():
                if child.poll() is not None:
                    print(f"error: the {role} process exited with code {child.returncode}; stopping.",
                          file=sys.stderr)
                    stopping, code = True, 1
            time.sleep(0.2)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        if pg:
            pg.stop()
        if nats:
            nats.stop()
        Path(record_file(settings)).unlink(missing_ok=True)
        print("aidraw stopped.", flush=True)
    return code
