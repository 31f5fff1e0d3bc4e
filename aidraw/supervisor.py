"""`aidraw run`: the whole system on one machine.

Starts the embedded NATS and PostgreSQL (unless AIDRAW_NATS_URL / AIDRAW_DATABASE_URL point elsewhere), then each
role as its own child process (api, projector, runner), prints the URL, and on Ctrl-C stops the roles first and the
servers last, so nothing acknowledged is lost.

- One `aidraw run` per data folder: it holds an exclusive lock on `<data>/run/lock` for its lifetime (the kernel
  drops it when the process ends, however it ends), checked before anything starts.
- Ctrl-C or SIGTERM at any point, start-up included, stops what has been started and nothing else; a step under
  way (initdb, a server's start) finishes first, in a session of its own so the terminal's Ctrl-C cannot cut it.
- A child that dies (a role, or an embedded server) is restarted with backoff, on the same port and files, and
  the others reconnect (aidraw/restarts.py); one that keeps dying (AIDRAW_RESTART_MAX times within
  AIDRAW_RESTART_WINDOW seconds) stops the whole system with a message naming it.
- On Linux the children die with `aidraw run` even when it is killed outright (a parent-death signal), so no
  server is left holding the data folder.
"""

from __future__ import annotations

import fcntl
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from aidraw.endpoints import Endpoints, record_file, save_embedded
from aidraw.restarts import STATE_ENV, Part, RestartPolicy, StateFile, how_it_ended
from aidraw.services import NatsServer, PostgresServer, check_data_dir, parent_death_signal, port_is_free
from infra.errors import Unavailable
from infra.settings import Settings


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while starting."""


def _spawn(role: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    if role == "runner":
        # All roles share this machine's cores: torch's OpenMP threads must sleep, not spin, between operations, or
        # a CPU runner starves the API and the projector (one tiny-model call measured 15-54 s instead of under 1 s
        # on a busy 2-core machine). An operator's own OMP_WAIT_POLICY wins.
        env = {"OMP_WAIT_POLICY": "PASSIVE", **env}
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

    def is_stopping() -> bool:  # a restart under way checks this between parts
        return stopping

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
                pg = PostgresServer(data_dir / "postgres", die_with_parent=True,
                                    shared_buffers=settings.pg_shared_buffers)
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
        from aidraw.migrate import migrate_sync

        migrate_sync(database_url)  # every schema exists before the roles start
        save_embedded(settings, Endpoints(nats_url, database_url))
        started.callback(lambda: Path(record_file(settings)).unlink(missing_ok=True))
        state = StateFile(data_dir / "run" / "supervisor.json")
        env = dict(os.environ, AIDRAW_NATS_URL=nats_url, AIDRAW_DATABASE_URL=database_url,
                   AIDRAW_DATA_DIR=str(data_dir), **{STATE_ENV: str(state.path)})
        parts: list[Part] = []  # servers first: a dead server is the cause, not its users
        if nats and nats.proc:
            parts.append(Part("nats", f"the embedded NATS server (log: {nats.store_dir / 'nats.log'})",
                              _starter(nats), nats.proc))
        if pg and pg.proc:
            parts.append(Part("postgres", f"the embedded PostgreSQL (log: {pg.data_dir / 'postgres.log'})",
                              _starter(pg), pg.proc))
        roles = [Part(role, f"the {role} process", functools.partial(_spawn, role, env))
                 for role in ("projector", "api", "runner")]
        for role in roles:
            role.proc = role.start()
        started.callback(_stop_roles, roles)
        started.callback(lambda: state.path.unlink(missing_ok=True))
        parts += roles
        state.update(parts)
        print(f"aidraw is starting on http://{settings.host}:{settings.port}  (API docs: /docs; Ctrl-C stops)",
              flush=True)
        policy = RestartPolicy(settings.restart_max, settings.restart_window_s)
        code = 0
        while not stopping:
            if not _supervise(parts, policy, is_stopping):
                stopping, code = True, 1
                break
            state.update(parts)
            time.sleep(0.2)
    print("aidraw stopped.", flush=True)
    return code


def _starter(server: NatsServer | PostgresServer) -> Callable[[], subprocess.Popen[bytes]]:
    """Start `server` again on its port and files; its new process."""

    def start() -> subprocess.Popen[bytes]:
        try:
            server.start()
        except BaseException:  # a server that did not come up must not hold its port for the next try
            if server.proc is not None and server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()
            raise
        assert server.proc is not None
        return server.proc

    return start


def _supervise(parts: list[Part], policy: RestartPolicy, stopping: Callable[[], bool]) -> bool:
    """One look at every part: note the ones that died, restart those whose pause is over. False: give up."""
    for part in parts:
        if stopping():
            return True
        if part.proc is not None and part.proc.poll() is not None:
            if not _crashed(part, how_it_ended(part.proc.returncode), policy):
                return False
        elif part.proc is None and part.restart_at is not None and time.monotonic() >= part.restart_at:
            try:
                part.proc = part.start()
            except Exception as exc:  # any failed start counts as a crash: the policy decides what follows
                if not _crashed(part, f"its restart failed: {exc}", policy):
                    return False
                continue
            part.restarts += 1
            part.restart_at = None
            print(f"restarted {part.what} (restart {part.restarts}, pid {part.proc.pid}).", file=sys.stderr,
                  flush=True)
    return True


def _crashed(part: Part, how: str, policy: RestartPolicy) -> bool:
    part.proc, part.last_exit = None, how
    delay = policy.after_crash(part.crashes, time.monotonic())
    if delay is None:
        print(f"error: {part.what} exited ({how}); it crashed {len(part.crashes)} times within "
              f"{policy.window_s:g} s (AIDRAW_RESTART_MAX, AIDRAW_RESTART_WINDOW); stopping.", file=sys.stderr,
              flush=True)
        return False
    part.restart_at = time.monotonic() + delay
    print(f"warning: {part.what} exited ({how}); restarting it in {delay:g} s.", file=sys.stderr, flush=True)
    return True


def _stop_roles(roles: list[Part]) -> None:
    running = [role.proc for role in roles if role.proc is not None and role.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGTERM)
    for proc in running:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
