"""The `aidraw` command on bad input, bad settings and servers that are gone: one line on stderr saying what is
wrong and what to do, a non-zero status, never a traceback. No servers are needed: each case stops before it
would talk to one (or finds that nothing answers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aidraw.services import free_port


def cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("AIDRAW_")}
    return subprocess.run([sys.executable, "-m", "aidraw.cli", *args],
                          env={**clean, "AIDRAW_DATA_DIR": str(data_dir), **env},
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == "", result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(("env", "says"), [
    ({"AIDRAW_PORT": "-1"}, "AIDRAW_PORT='-1' is out of range: use an integer from 1 to 65535"),
    ({"AIDRAW_PORT": "99999"}, "AIDRAW_PORT='99999' is out of range: use an integer from 1 to 65535"),
    ({"AIDRAW_PORT": "abc"}, "AIDRAW_PORT='abc' is not an integer"),
    ({"AIDRAW_LOG_LEVEL": "LOUD"}, "use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ({"AIDRAW_JSON_MAX_BYTES": "0"}, "AIDRAW_JSON_MAX_BYTES='0' is out of range: use an integer 1024 or more"),
    ({"AIDRAW_READ_YOUR_WRITES_TIMEOUT": "-1"}, "AIDRAW_READ_YOUR_WRITES_TIMEOUT='-1' is out of range"),
    ({"AIDRAW_SESSION_TTL": "-5"}, "AIDRAW_SESSION_TTL='-5' is out of range: use a number above 0"),
    ({"AIDRAW_STREAM_REPLICAS": "9"}, "AIDRAW_STREAM_REPLICAS='9' is out of range: use an integer from 1 to 5"),
])
def test_bad_settings_are_one_line_and_status_2(tmp_path: Path, env: dict[str, str], says: str) -> None:
    assert says in one_line_error(cli(tmp_path, "audit", "tag", "1", **env), 2)


@pytest.mark.parametrize("role", ["api", "run"])
def test_a_data_folder_that_cannot_be_created_is_one_line(role: str) -> None:
    line = one_line_error(cli(Path("/proc/nope"), role), 2)
    assert "AIDRAW_DATA_DIR='/proc/nope': the folder cannot be created (No such file or directory)" in line


@pytest.mark.parametrize(("args", "says"), [
    (["tag", "0"], "'0' is not an id (a positive integer below 2^53"),
    (["tag", "9007199254740993"], "'9007199254740993' is not an id"),
    (["tag", "abc"], "'abc' is not an id"),
    (["tag", "-5"], "'-5' is not an id"),
    (["nosuch", "1"], "no kind of object named 'nosuch'; use one of choice, dataset, image"),
])
def test_audit_says_what_is_wrong_with_its_arguments(tmp_path: Path, args: list[str], says: str) -> None:
    assert says in one_line_error(cli(tmp_path, "audit", *args), 2)


def test_an_unknown_projector_lists_the_known_ones(tmp_path: Path) -> None:
    line = one_line_error(cli(tmp_path, "projector", "tags", "nosuch"), 2)
    assert "No projection named 'nosuch'; known: tags, users" in line


def test_a_stale_endpoints_record_says_the_system_is_not_running(tmp_path: Path) -> None:
    record = tmp_path / "run" / "endpoints.json"  # as left by an `aidraw run` that was killed
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"nats_url": f"nats://127.0.0.1:{free_port()}",
                                  "database_url": f"postgresql://aidraw@127.0.0.1:{free_port()}/aidraw"}))
    for args in (["audit", "tag", "1"], ["user", "create", "root", "root@example.org"]):
        started = time.monotonic()
        line = one_line_error(cli(tmp_path, *args, AIDRAW_ADMIN_PASSWORD="correct horse"), 1)
        assert time.monotonic() - started < 8
        assert f"The embedded system recorded in {record} is not running" in line, line
        assert "make run" in line and "AIDRAW_NATS_URL" in line


def test_an_unreachable_external_server_is_one_line_with_the_reason(tmp_path: Path) -> None:
    nats_url, database_url = f"nats://127.0.0.1:{free_port()}", f"postgresql://127.0.0.1:{free_port()}/x"
    started = time.monotonic()
    line = one_line_error(cli(tmp_path, "audit", "tag", "1", AIDRAW_NATS_URL=nats_url,
                              AIDRAW_DATABASE_URL=database_url), 1)
    assert time.monotonic() - started < 8
    assert f"cannot reach NATS at {nats_url}: no connection within 4 s (connection refused" in line, line
    line = one_line_error(cli(tmp_path, "user", "create", "root", "root@example.org", AIDRAW_NATS_URL=nats_url,
                              AIDRAW_DATABASE_URL=database_url, AIDRAW_ADMIN_PASSWORD="correct horse"), 1)
    assert "cannot reach PostgreSQL" in line and "Connection refused" in line and "AIDRAW_DATABASE_URL" in line


def test_no_record_names_the_folder_looked_in_and_the_data_dir_setting(tmp_path: Path) -> None:
    line = one_line_error(cli(tmp_path / "elsewhere", "audit", "tag", "1"), 1)
    assert f"no running system records its servers in {tmp_path / 'elsewhere' / 'run' / 'endpoints.json'}" in line
    assert "set the same AIDRAW_DATA_DIR here" in line, line
