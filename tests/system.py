"""The system under test: the real `aidraw api` and `aidraw projector` processes (and `aidraw runner` when asked),
on the test session's NATS and PostgreSQL, with a stream and a database of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from aidraw.migrate import migrate_sync
from aidraw.services import free_port


@dataclass
class System:
    nats_url: str
    database_url: str
    stream: str
    data_dir: Path
    port: int = 0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    runner: bool = False  # also start `aidraw runner` (the tiny model, CPU) once the API answers

    @property
    def prefix(self) -> str:
        return self.stream.lower()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            AIDRAW_NATS_URL=self.nats_url,
            AIDRAW_DATABASE_URL=self.database_url,
            AIDRAW_STREAM=self.stream,
            AIDRAW_SUBJECT_PREFIX=self.prefix,
            AIDRAW_DATA_DIR=str(self.data_dir),
            AIDRAW_PORT=str(self.port),
            # A busy test machine can take longer than the production answer-time bound (2 s) to project a
            # write; tests that check the bound itself set a short one through extra_env.
            # The embedding worker loads torch and a sentence model (seconds, hundreds of MB): only the tests of
            # similarity turn it on.
            **{"AIDRAW_LOG_LEVEL": "WARNING", "AIDRAW_READ_YOUR_WRITES_TIMEOUT": "20", "AIDRAW_EMBEDDER": "false",
               **self.extra_env},
        )

    def start_role(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.data_dir / f"{role}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen([sys.executable, "-m", "aidraw.cli", role, *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[role] = proc
        return proc

    def start(self) -> System:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        migrate_sync(self.database_url)  # as `aidraw run` does before it starts the roles
        self.start_role("projector")
        self.start_role("api")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.procs["api"].poll() is not None:
                raise RuntimeError("api exited:\n" + self.log("api"))
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    if self.runner:
                        self.start_role("runner")
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("api did not start:\n" + self.log("api"))

    def log(self, role: str) -> str:
        path = self.data_dir / f"{role}.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def stop_role(self, role: str, kill: bool = False) -> None:
        proc = self.procs.pop(role, None)
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        """Every role at once: each gets its SIGTERM before any is waited for, so the teardown takes the slowest
        role's shutdown (a projector finishes its fetch and batch), not the sum of them all."""
        procs = [self.procs.pop(role) for role in list(self.procs)]
        running = [proc for proc in procs if proc.poll() is None]
        for proc in running:
            proc.terminate()
        deadline = time.monotonic() + 15
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)
