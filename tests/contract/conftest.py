"""Fixtures for the contract tests: every implementation of an interface, each against real infrastructure.

The blob store runs over a folder and over a real S3 server (SeaweedFS `weed mini`, which checks signatures),
one server per session and one fresh bucket per test.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.storage import BlobStore
from infra.storage.local import LocalBlobStore
from infra.storage.s3 import S3BlobStore
from tests.seaweed import SeaweedS3Server

_buckets = itertools.count(1)


@pytest.fixture(scope="session")
def seaweed_server(servers_dir: Path) -> Iterator[SeaweedS3Server]:
    server = SeaweedS3Server(servers_dir / "s3").start()
    yield server
    server.stop()


@pytest.fixture
def s3_blob_store(seaweed_server: SeaweedS3Server) -> S3BlobStore:
    return S3BlobStore(
        bucket=f"t-{os.getpid()}-{next(_buckets)}",
        endpoint_url=seaweed_server.endpoint_url,
        access_key=seaweed_server.access_key,
        secret_key=seaweed_server.secret_key,
        create_bucket=True,
    )


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    store: S3BlobStore = request.getfixturevalue("s3_blob_store")
    return store
