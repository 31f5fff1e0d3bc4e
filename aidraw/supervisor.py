"""`aidraw run`: the whole system on one machine.

Starts the embedded NATS and PostgreSQL (unless AIDRAW_NATS_URL / AIDRAW_DATABASE_URL point elsewhere), then each
role as its own child process (api, projector), prints the URL, and on Ctrl-C stops the roles first and the
servers last, so nothing acknowledged is lost.

- One `aidraw run` per data folder: it holds an exclusive lock on `<data>/run/lock` for its lifetime (the kernel
  drops it when the process ends, however it ends), checked before anything starts.
- Ctrl-C or SIGTERM at any point, start-up included, stops what has been started and nothing else; a step under
  way (initdb, a server's start) finishes first, in a session of its own so the terminal's Ctrl-C cannot cut it.
- Whatever child dies (a role, or an embedded server), the whole system stops with a message naming it.
- On Linux the children die with `aidraw run` even when it is killed outright (a parent-death signal), so no
  server is left holding the data folder.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from aidraw.endpoints import Endpoints, record_file, save_embedded
from aidraw.services import NatsServer, PostgresServer, check_data_dir, parent_death_signal, port_is_free
from infra.errors import Unavailable
from infra.settings import Settings


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while starting."""


def _spawn(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "aidraw.cli", role], env=env, preexec_fn=parent_death_signal)


def _lock_data_dir(data_dir: Path) -> IO[str]:
    """The exclusive lock that makes this the one `aidraw run` on `data_dir` (held until the file is closed)."""
    path = data_dir / "run" / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise Unavailable(
            f"Another `aidraw run` (pid {holder}) uses the data folder {data_dir}. Stop it (Ctrl-C in its "
            f"terminal, or kill -INT {holder}), or choose another folder with AIDRAW_DATA_DIR."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def run_all(settings: Settings) -> int:
    data_dir = settings.data_dir.resolve()
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    # From the first moment: a signal only asks to stop, and each step below checks for it when it is done.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)

    def checkpoint() -> None:
        if stopping:
            raise _Interrupted

    with ExitStack() as started:  # unwinds in reverse: servers stop after the roles, the lock goes last
        try:
            check_data_dir(data_dir)
            started.enter_context(_lock_data_dir(data_dir))
            if not port_is_free(settings.port, settings.host):
                raise Unavailable(
                    f"Port {settings.port} on {settings.host} is already in use. Stop what uses it or start with "
                    f"AIDRAW_PORT=<another port> make run."
                )
            nats: NatsServer | None = None
            pg: PostgresServer | None = None
            nats_url, database_url = settings.nats_url, settings.database_url
            if not nats_url:
                print(f"starting NATS (JetStream) in {data_dir / 'nats'} ...", flush=True)
                nats = NatsServer(data_dir / "nats", die_with_parent=True)
                started.callback(nats.stop)
                nats.start()
                nats_url = nats.url
                checkpoint()
            if not database_url:
                print(f"starting PostgreSQL in {data_dir / 'postgres'} ...", flush=True)
                pg = PostgresServer(data_dir / "postgres", die_with_parent=True)
                started.callback(pg.stop)
                pg.start()
                database_url = pg.url
                checkpoint()
        except Unavailable as exc:  # an embedded server could not be started
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except _Interrupted:
            print("interrupted while starting; stopped what had started.", file=sys.stderr)
            return 130
        save_embedded(settings, Endpoints(nats_url, database_url))
        started.callback(lambda: Path(record_file(settings)).unlink(missing_ok=True))
        env = dict(os.environ, AIDRAW_NATS_URL=nats_url, AIDRAW_DATABASE_URL=database_url,
                   AIDRAW_DATA_DIR=str(data_dir))
        children = {role: _spawn(role, env) for role in ("projector", "api")}
        started.callback(_stop_roles, children)
        print(f"aidraw is starting on http://{settings.host}:{settings.port}  (API docs: /docs; Ctrl-C stops)",
              flush=True)
        watched: dict[str, subprocess.Popen[bytes]] = {}  # servers first: a dead server is the cause, not its users
        if nats and nats.proc:
            watched[f"the embedded NATS server (log: {nats.store_dir / 'nats.log'})"] = nats.proc
        if pg and pg.proc:
            watched[f"the embedded PostgreSQL (log: {pg.data_dir / 'postgres.log'})"] = pg.proc
        watched |= {f"the {role} process": child for role, child in children.items()}
        code = 0
        while not stopping:
            for what, proc in watched.items():
                if proc.poll() is not None:
                    print(f"error: {what} exited ({_how(proc.returncode)}); stopping.", file=sys.stderr)
                    stopping, code = True, 1
                    break
            time.sleep(0.2)
    print("aidraw stopped.", flush=True)
    return code


def _how(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _stop_roles(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
