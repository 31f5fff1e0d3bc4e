"""Uploads cost bounded memory: parallel decompression bombs against a real `aidraw api` process, its peak
memory read from the kernel (VmHWM in /proc/PID/status).

Each bomb is a 48 KB PNG of 4000x4000 black RGB pixels: 64 MB decoded, `decode_cost` about 136 MB. The API runs
with AIDRAW_DECODE_MEMORY=200 MiB, so one decodes at a time, the others wait. The documented bound
(docs/configuration.md) is the budget plus the process's own working memory; the test allows the budget plus
120 MiB. Before the pool, eight of them in parallel took a 40-thread pool's worth of ~240 MB decodes at once
(more than 1 GB). The bench `bench/upload_memory.py` prints the figures for 8 and 32 bombs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aidraw.services import NatsServer, PostgresServer
from tests.accounts import Account, new_account, system_with
from tests.catalog_accounts import assert_problem
from tests.image_files import picture, upload
from tests.system import System
from tests.unit.test_media import real_png_bomb

MIB = 1024 * 1024
BUDGET = 200 * MIB
SLACK = 120 * MIB


@pytest.fixture(scope="module")
def bounded(nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path) -> Iterator[System]:
    with system_with(nats_server, postgres_server, servers_dir, AIDRAW_UPLOAD_MAX_PIXELS="40000000",
                     AIDRAW_DECODE_MEMORY=str(BUDGET), AIDRAW_DECODE_WAIT="120",
                     AIDRAW_UPLOADS_PER_USER="2") as system:
        yield system


def peak_rss(system: System) -> int:
    status = Path(f"/proc/{system.procs['api'].pid}/status").read_text()
    [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


def in_parallel(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    answers: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def bomb_upload(system: System, account: Account, bomb: bytes) -> Callable[[], httpx.Response]:
    def call() -> httpx.Response:
        with httpx.Client(base_url=system.url, headers=account.headers, timeout=300) as client:
            return upload(client, bomb, "bomb.png")
    return call


def test_parallel_bombs_from_many_users_stay_within_the_decode_budget(bounded: System) -> None:
    accounts = [new_account(bounded, "bomber") for _ in range(8)]
    with httpx.Client(base_url=bounded.url, headers=accounts[0].headers, timeout=60) as client:
        assert upload(client, picture(2000, 1500)).status_code == 201  # the process's own working memory
    before = peak_rss(bounded)
    bomb = real_png_bomb(4000, 2)
    answers = in_parallel([bomb_upload(bounded, account, bomb) for account in accounts])
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers if a.status_code != 201]
    growth = peak_rss(bounded) - before
    assert growth <= BUDGET + SLACK, f"peak grew by {growth / MIB:.0f} MiB"


def test_a_users_uploads_beyond_their_share_are_429_saying_to_wait(bounded: System) -> None:
    account = new_account(bounded, "hurried")
    bomb = real_png_bomb(4000, 2)
    answers = in_parallel([bomb_upload(bounded, account, bomb) for _ in range(5)])
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) >= 2 and set(statuses) == {201, 429}, statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert "uploads in progress" in assert_problem(refused, 429)["detail"]
    assert int(refused.headers["Retry-After"]) >= 1


def test_an_image_that_alone_needs_more_than_the_budget_is_413(bounded: System) -> None:
    account = new_account(bounded, "big")
    with httpx.Client(base_url=bounded.url, headers=account.headers, timeout=120) as client:
        problem = assert_problem(upload(client, real_png_bomb(6000, 2), "big.png"), 413)
    assert "AIDRAW_DECODE_MEMORY" in problem["detail"] and "fewer pixels" in problem["detail"], problem
