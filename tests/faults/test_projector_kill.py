"""A projector killed (SIGKILL) at random points, then restarted, leaves exactly the rows of a clean rebuild."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from aidraw.migrate import migrate_sync
from aidraw.services import NatsServer, PostgresServer
from command.app import CommandApp
from command.tags import Tag
from events.ids import aggregate_uuid, new_id
from events.tags import TagCreated
from infra.settings import Settings
from projectors.checkpoints import read_all_sync, wait_until_projected_sync
from projectors.loop import Target
from projectors.postgres.sink import PostgresSink
from projectors.postgres.tags import TagsProjector
from projectors.rebuild import rebuild
from projectors.sink import CheckpointMoved


def write_events(app: CommandApp, count: int) -> int:
    """`count` events: tags created, renamed and deleted, saved a few aggregates per atomic batch."""
    rng = random.Random(7)
    tags: list[Tag] = []
    written = last = 0
    while written < count:
        batch: list[Tag] = []
        for _ in range(rng.randint(1, 60)):
            if tags and rng.random() < 0.6:
                tag = rng.choice(tags)
                if tag.deleted or tag in batch:
                    continue
                if rng.random() < 0.15:
                    tag.delete()
                    tags.remove(tag)
                else:
                    tag.rename(f"n{rng.randrange(10**9)}")
            else:
                number = new_id()
                tag = Tag._create(TagCreated, id=aggregate_uuid("tag", number), name=f"t{number}", user_id=None)
                tags.append(tag)
            batch.append(tag)
        written += sum(len(t.pending_events) for t in batch)
        last = app.store(*batch)
    return last


def rows(url: str, schema: str = "rm") -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT * FROM {schema}.tags ORDER BY id").fetchall()


def _until_it_projects(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until the checkpoint moves (the projector started and commits), it exits, or `timeout` passes."""
    before, deadline = read_all_sync(url).get("tags", 0), time.monotonic() + timeout
    while read_all_sync(url).get("tags", 0) == before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def test_sigkilled_projector_resumes_to_the_rows_of_a_clean_rebuild(
    nats_server: NatsServer, postgres_server: PostgresServer, stream_name: str, tmp_path: Path
) -> None:
    settings = Settings(stream_name=stream_name, subject_prefix=stream_name.lower())
    app = CommandApp(settings, nats_server.url)
    last = write_events(app, 12000)
    app.close()
    url = postgres_server.create_database(f"kill_{stream_name.lower()}")
    migrate_sync(url)  # as `aidraw run` does first: each projector start then only checks the schemas
    env = {"AIDRAW_NATS_URL": nats_server.url, "AIDRAW_DATABASE_URL": url, "AIDRAW_STREAM": stream_name,
           "AIDRAW_SUBJECT_PREFIX": stream_name.lower(), "AIDRAW_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin",
           "AIDRAW_PROJECTOR_BATCH": "50"}
    rng = random.Random(11)
    kills = mid_run_kills = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        proc = subprocess.Popen([sys.executable, "-m", "aidraw.cli", "projector", "tags"], env=env,
                                stdout=subprocess.DEVNULL, stderr=(tmp_path / "projector.log").open("ab"))
        _until_it_projects(url, proc)  # a busy machine can take seconds to start a process
        time.sleep(rng.uniform(0.0, 0.6))
        proc.kill()
        proc.wait()
        kills += 1
        position = read_all_sync(url).get("tags", 0)
        mid_run_kills += 0 < position < last
        if position >= last:
            break
    assert mid_run_kills >= 2, f"only {mid_run_kills} kills landed mid-run"
    # Finish the run without a kill.
    proc = subprocess.Popen([sys.executable, "-m", "aidraw.cli", "projector", "tags"], env=env,
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "projector.log").open("ab"))
    try:
        assert wait_until_projected_sync(url, ["tags"], last, 120), (tmp_path / "projector.log").read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(10)
    live = rows(url)
    assert live, "nothing was projected"

    clean_url = postgres_server.create_database(f"clean_{stream_name.lower()}")
    report = asyncio.run(rebuild(TagsProjector(), Target(nats_server.url, stream_name, clean_url), last))
    assert report.position == last
    assert rows(clean_url) == live


def test_a_redelivered_batch_is_a_no_op(
    nats_server: NatsServer, postgres_server: PostgresServer, stream_name: str
) -> None:
    settings = Settings(stream_name=stream_name, subject_prefix=stream_name.lower())
    app = CommandApp(settings, nats_server.url)
    last = write_events(app, 300)
    app.close()
    url = postgres_server.create_database(f"redeliver_{stream_name.lower()}")
    target = Target(nats_server.url, stream_name, url)
    from projectors.loop import ProjectionLoop

    first = asyncio.run(ProjectionLoop(TagsProjector(), target).run(asyncio.Event(), until=last))
    before = rows(url)
    # Force a redelivery of everything: a runner that believes it starts from 0 but shares the checkpoint.
    with psycopg.connect(url) as conn:
        checkpoint = conn.execute("SELECT position FROM projection_checkpoints WHERE name='tags'").fetchone()
    runner = ProjectionLoop(TagsProjector(), target)
    runner.position = 0

    async def replay_all() -> None:
        import nats

        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        sub = await runner._subscribe(js)
        sink = PostgresSink(TagsProjector(), url)
        assert await sink.open(asyncio.Event())
        msgs = await sub.fetch(last, timeout=5)
        with pytest.raises(CheckpointMoved):  # the stored checkpoint says these are applied already
            await runner._apply_batch(sink, msgs)
        runner.position = await sink.load_checkpoint()
        assert await runner._apply_batch(sink, msgs) == []  # redelivered: skipped, nothing announced
        await sink.close()
        await sub.stop()
        await nc.close()

    asyncio.run(replay_all())
    assert first == last and checkpoint == (last,)
    assert rows(url) == before
