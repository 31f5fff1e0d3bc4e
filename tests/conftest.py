"""Real servers for the tests: a NATS server (JetStream) and a PostgreSQL with pgvector, one of each per test
session, started from the wheels on free loopback ports in a temporary folder. Tests that need a clean log take
a fresh stream name; tests that need clean tables take a fresh database."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aidraw.services import NatsServer, PostgresServer
from tests.catalog_accounts import People, make_people
from tests.system import System

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def servers_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="aidraw-test-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def nats_server(servers_dir: Path) -> Iterator[NatsServer]:
    server = NatsServer(servers_dir / "nats").start()
    yield server
    from events.store.bridge import NatsBridge

    shared = NatsBridge._shared.get(server.url)  # this process's connection goes before its server
    if shared is not None:
        shared.close()
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(servers_dir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(servers_dir / "pg", fast_unsafe=True).start()
    yield server
    server.stop()


@pytest.fixture
def stream_name() -> str:
    """A stream nobody else uses: the library's contract tests expect sequences from 1."""
    return f"T{os.getpid()}_{next(_counter)}"


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's PostgreSQL."""
    return postgres_server.create_database(f"t_{os.getpid()}_{next(_counter)}")


@pytest.fixture(scope="module")
def system(nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path) -> Iterator[System]:
    """The API and the projectors as real processes, on a stream and database of this test module's own."""
    number = next(_counter)
    stream = f"S{os.getpid()}_{number}"
    url = postgres_server.create_database(f"sys_{os.getpid()}_{number}")
    sut = System(nats_server.url, url, stream, servers_dir / f"system-{number}").start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def people(system: System) -> People:
    """Alice, Bob and an admin, signed up on this module's system."""
    return make_people(system)
