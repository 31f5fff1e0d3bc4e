"""`make run`'s command, as a new user meets it: start, use, Ctrl-C, start again and find everything."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from aidraw.services import free_port


def start(data_dir: Path, port: int, **extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, AIDRAW_DATA_DIR=str(data_dir), AIDRAW_PORT=str(port), AIDRAW_LOG_LEVEL="WARNING",
               **extra)
    for name in ("AIDRAW_NATS_URL", "AIDRAW_DATABASE_URL"):
        env.pop(name, None)
    return subprocess.Popen([sys.executable, "-m", "aidraw.cli", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_ready(url: str, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the system did not become ready")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def test_run_serves_stops_cleanly_and_restarts_with_every_event(tmp_path: Path) -> None:
    data, port = tmp_path / "var", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data, port)
    try:
        wait_ready(url, proc)
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.post("/api/users", json={"name": "ada", "email": "ada@example.org",
                                                   "password": "correct horse"}).status_code == 201
            token = client.post("/api/sessions", json={"name": "ada", "password": "correct horse"}).json()["token"]
            tag = client.post("/api/tags", json={"name": "lighthouse"},
                              headers={"Authorization": f"Bearer {token}"}).json()
            mine = client.get(f"/api/tags/{tag['id']}", headers={"Authorization": f"Bearer {token}"})
            assert mine.status_code == 200  # read-your-writes: the writer sees its tag at once
    finally:
        out = stop(proc)
    assert "aidraw stopped" in out

    proc = start(data, port)
    try:
        wait_ready(url, proc)
        with httpx.Client(base_url=url, timeout=30) as client:
            # A tag nothing public carries is its creator's to see (docs/images.md): ask as Ada.
            shown = client.get(f"/api/tags/{tag['id']}", headers={"Authorization": f"Bearer {token}"})
            assert shown.json()["name"] == "lighthouse"
            again = client.post("/api/sessions", json={"name": "ada", "password": "correct horse"})
            assert again.status_code == 201
            assert client.get("/openapi.json").status_code == 200 and client.get("/docs").status_code == 200
    finally:
        stop(proc)


def test_a_port_in_use_is_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(tmp_path / "var", port)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"Port {port}" in out and "already in use" in out and "Traceback" not in out


def test_a_data_folder_of_another_version_is_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    (data / "LAYOUT_VERSION").write_text("999\n")
    proc = start(data, free_port())
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "layout version 999" in out and "Traceback" not in out


def test_a_data_folder_with_only_aidraw_entries_is_adopted(tmp_path: Path) -> None:
    from aidraw.services import check_data_dir

    data = tmp_path / "var"
    (data / "blobs" / ".tmp").mkdir(parents=True)
    check_data_dir(data)
    assert (data / "LAYOUT_VERSION").read_text().strip() == "1"


def _servers_of(data: Path, but: int | None = None) -> list[int]:
    """Pids of the processes of a system on this data folder: the embedded servers name it on their command
    line, the roles in their environment (`aidraw run` itself, pid `but`, is left out)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != but:
            try:
                seen = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
            except OSError:
                continue
            if str(data).encode() in seen and (entry / "stat").read_text().split(")")[-1].split()[0] != "Z":
                found.append(int(entry.name))
    return found


def _gone(data: Path, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _servers_of(data):
            return True
        time.sleep(0.2)
    return False


def test_a_second_run_on_one_data_folder_starts_nothing(tmp_path: Path) -> None:
    data, port = tmp_path / "var", free_port()
    first = start(data, port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", first)
        before = sorted(_servers_of(data))
        second = start(data, free_port())
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 2 and "Traceback" not in out
        assert f"Another `aidraw run` (pid {first.pid})" in out and "AIDRAW_DATA_DIR" in out
        assert sorted(_servers_of(data)) == before  # no second NATS on the same store
    finally:
        stop(first)
    assert _gone(data)


def test_ctrl_c_while_starting_stops_what_had_started(tmp_path: Path) -> None:
    data = tmp_path / "var"
    proc = start(data, free_port())
    assert proc.stdout is not None
    for line in proc.stdout:  # warnings may come first
        if "starting NATS" in line:
            break
    proc.send_signal(signal.SIGINT)  # NATS is starting or up; PostgreSQL may be in initdb
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130) and "Traceback" not in out, out
    assert _gone(data), _servers_of(data)


def _supervised_nats(data: Path) -> dict[str, Any]:
    """What `aidraw run` says of its NATS server (var/run/supervisor.json): state, pid, restarts, last exit."""
    state: dict[str, Any] = json.loads((data / "run" / "supervisor.json").read_text())["parts"]["nats"]
    return state


def test_a_server_that_keeps_dying_stops_the_system_with_a_message(tmp_path: Path) -> None:
    data, port = tmp_path / "var", free_port()
    proc = start(data, port, AIDRAW_RESTART_MAX="2")
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        os.kill(_supervised_nats(data)["pid"], signal.SIGKILL)  # the first crash is restarted ...
        deadline = time.monotonic() + 30
        while (nats := _supervised_nats(data))["restarts"] < 1 or nats["state"] != "running":
            assert time.monotonic() < deadline and proc.poll() is None, "NATS was not restarted"
            time.sleep(0.1)
        os.kill(nats["pid"], signal.SIGKILL)  # ... the second within the window stops the system
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            stop(proc)
    assert re.search(r"the embedded NATS server \(log: .*nats\.log\) exited \(killed by SIGKILL\); restarting it in "
                     r"0\.5 s", out), out
    assert re.search(r"restarted the embedded NATS server \(log: .*\) \(restart 1, pid \d+\)", out), out
    assert proc.returncode == 1 and re.search(r"the embedded NATS server \(log: .*nats\.log\) exited \(killed by "
                                              r"SIGKILL\); it crashed 2 times within 60 s .*; stopping", out), out
    assert _gone(data), _servers_of(data)


def test_killing_run_outright_takes_its_children_along(tmp_path: Path) -> None:
    data, port = tmp_path / "var", free_port()
    proc = start(data, port)
    wait_ready(f"http://127.0.0.1:{port}", proc)
    assert len(_servers_of(data)) >= 4  # NATS, PostgreSQL, the api and the projector
    proc.kill()
    proc.wait()
    assert _gone(data), _servers_of(data)
    again = start(data, port)  # and the folder is free again at once
    try:
        wait_ready(f"http://127.0.0.1:{port}", again)
    finally:
        stop(again)
