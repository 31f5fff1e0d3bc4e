"""A projector killed (SIGKILL) at random points, then restarted, leaves exactly the rows of a clean rebuild: the
tags projector (small rows, many aggregates per batch) and the images projector (the busiest: images, likes,
featured collections and the per-day counters, whose rows depend on each other in log order)."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aidraw.migrate import migrate_sync
from aidraw.services import NatsServer, PostgresServer
from command.app import CommandApp
from command.choices import Choice
from command.images import Image
from command.likes import Likes
from command.tags import Tag
from events.choices import ChoiceCreated
from events.ids import aggregate_uuid, new_id
from events.images import ImageUploaded
from events.likes import LikesStarted
from events.tags import TagCreated
from infra.settings import Settings
from projectors.base import Projector
from projectors.checkpoints import read_all_sync
from projectors.loop import Target
from projectors.postgres.images import ImagesProjector
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


def write_image_events(app: CommandApp, count: int) -> int:
    """`count` events of the images projector: uploads, changes, deletions, likes and unlikes by a few users,
    featured collections; several aggregates per atomic batch, as the commands write them."""
    rng = random.Random(5)
    images: list[Image] = []
    likes = {user: Likes._create(LikesStarted, id=aggregate_uuid("likes", user), user_id=user)
             for user in range(1, 6)}
    written = last = 0
    while written < count:
        batch: list[Any] = []
        for _ in range(rng.randint(1, 20)):
            roll = rng.random()
            if not images or roll < 0.35:
                image = Image._create(
                    ImageUploaded, id=aggregate_uuid("image", new_id()), user_id=rng.randint(1, 5),
                    name=f"i{rng.randrange(10**6)}", prompt="a cat", negative_prompt="", width=64, height=64,
                    num_inference_steps=None, guidance_scale=None, scheduler=None, seed=None, from_image=None,
                    model_id=None, loras=[], blob_key=f"b/{rng.randrange(10**9)}.png", thumbnail_key=None,
                    content_type="image/png", public=rng.random() < 0.8, tag_ids=[], task_id=None,
                    descriptor=[rng.random() for _ in range(4)])
                images.append(image)
                batch.append(image)
                continue
            image = rng.choice(images)
            if image in batch:
                continue
            if roll < 0.75:
                user = likes[rng.randint(1, 5)]
                if user not in batch:
                    (user.unlike if image.number in user.image_ids else user.like)(image.number)
                    batch.append(user)
            elif roll < 0.85:
                image.change(f"r{rng.randrange(10**6)}", None, rng.random() < 0.5)
                batch.append(image)
            elif roll < 0.93:
                image.delete()
                images.remove(image)
                batch.append(image)
            else:
                items = [{"image_id": i.number, "weight": 1.0} for i in rng.sample(images, min(3, len(images)))]
                batch.append(Choice._create(ChoiceCreated, id=aggregate_uuid("choice", new_id()),
                                            user_id=rng.randint(1, 5), name="c", public=True, items=items))
        batch = [a for a in batch if a.pending_events]
        if batch:
            written += sum(len(a.pending_events) for a in batch)
            last = app.store(*batch)
    return last


def rows(url: str, tables: tuple[str, ...] = ("tags",), schema: str = "rm") -> dict[str, list[tuple]]:
    """Every row of the tables, in one order whatever their keys."""
    with psycopg.connect(url) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {schema}.{t}").fetchall(), key=repr) for t in tables}


def _projector(name: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "aidraw.cli", "projector", name], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))


KILLS = 5  # mid-run kills per test: each one costs a process start, slow on a busy machine


def kill_repeatedly_then_finish(projector: Projector, nats_url: str, stream_name: str, url: str, last: int,
                                log: Path) -> None:
    """SIGKILL the projector at random points, KILLS times or until it has projected everything, then run it to
    the end."""
    env = {"AIDRAW_NATS_URL": nats_url, "AIDRAW_DATABASE_URL": url, "AIDRAW_STREAM": stream_name,
           "AIDRAW_SUBJECT_PREFIX": stream_name.lower(), "AIDRAW_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin",
           "AIDRAW_PROJECTOR_BATCH": "50"}
    migrate_sync(url)  # as `aidraw run` does first: each projector start then only checks the schemas
    rng = random.Random(11)
    mid_run_kills = position = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        proc = _projector(projector.name, env, log)
        # The kill lands a random moment after the projector has committed its first batch: how long it takes
        # to start varies with the machine's load, and a kill before that would test nothing.
        while read_all_sync(url).get(projector.name, 0) == position and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))
        proc.kill()
        proc.wait()
        position = read_all_sync(url).get(projector.name, 0)
        mid_run_kills += 0 < position < last
        if position >= last or mid_run_kills == KILLS:
            break
    assert mid_run_kills >= 2, f"only {mid_run_kills} kills landed mid-run"
    proc = _projector(projector.name, env, log)  # the end of the run, without a kill
    try:
        while read_all_sync(url).get(projector.name, 0) < last:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)


def assert_same_as_a_clean_rebuild(projector: Projector, nats_server: NatsServer, postgres_server: PostgresServer,
                                   stream_name: str, url: str, last: int) -> None:
    live = rows(url, projector.tables)
    assert any(live.values()), "nothing was projected"
    clean_url = postgres_server.create_database(f"clean_{projector.name}_{stream_name.lower()}")
    report = asyncio.run(rebuild(projector, Target(nats_server.url, stream_name, clean_url), last))
    assert report.position == last
    assert rows(clean_url, projector.tables) == live


def test_sigkilled_projector_resumes_to_the_rows_of_a_clean_rebuild(
    nats_server: NatsServer, postgres_server: PostgresServer, stream_name: str, tmp_path: Path
) -> None:
    settings = Settings(stream_name=stream_name, subject_prefix=stream_name.lower())
    app = CommandApp(settings, nats_server.url)
    last = write_events(app, 12000)
    app.close()
    url = postgres_server.create_database(f"kill_{stream_name.lower()}")
    kill_repeatedly_then_finish(TagsProjector(), nats_server.url, stream_name, url, last, tmp_path / "projector.log")
    assert_same_as_a_clean_rebuild(TagsProjector(), nats_server, postgres_server, stream_name, url, last)


def test_sigkilled_images_projector_resumes_to_the_rows_of_a_clean_rebuild(
    nats_server: NatsServer, postgres_server: PostgresServer, stream_name: str, tmp_path: Path
) -> None:
    settings = Settings(stream_name=stream_name, subject_prefix=stream_name.lower())
    app = CommandApp(settings, nats_server.url)
    last = write_image_events(app, 5000)
    app.close()
    url = postgres_server.create_database(f"killimg_{stream_name.lower()}")
    projector = ImagesProjector()
    kill_repeatedly_then_finish(projector, nats_server.url, stream_name, url, last, tmp_path / "projector.log")
    live = rows(url, projector.tables)
    assert live["images"] and live["image_likes"] and live["choice_items"], "a table was never written"
    assert_same_as_a_clean_rebuild(projector, nats_server, postgres_server, stream_name, url, last)


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
