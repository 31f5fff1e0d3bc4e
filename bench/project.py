"""Projecting events into PostgreSQL: the tags projector through the projection loop (fetch -> apply -> commit -> ack,
with and without announcing the changed objects on NATS)
versus a raw batched insert of the same rows on the same PostgreSQL in the same run, and the time to rebuild a
read model from a large log. Starts its own nats-server and PostgreSQL in a temporary folder (durable settings:
`sync_interval: always`, fsync on). Prints figures, asserts nothing.

    .venv/bin/python -m bench.project [--events 100000] [--rebuild-events 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import psycopg

from aidraw.services import NatsServer, PostgresServer
from bench import close_nats
from command.app import CommandApp
from command.tags import Tag
from events.ids import aggregate_uuid, new_id, split_uuid
from events.tags import TagCreated
from infra.settings import Settings
from projectors.loop import ProjectionLoop, Target
from projectors.postgres.tags import TagsProjector
from projectors.rebuild import rebuild

BATCH = 500


def append_tags(app: CommandApp, count: int) -> tuple[int, float, list[tuple]]:
    """`count` TagCreated events in atomic batches; the rows a projection of them must give."""
    started = time.perf_counter()
    last, rows = 0, []
    for start in range(0, count, BATCH):
        tags = []
        for _ in range(min(BATCH, count - start)):
            number = new_id()
            tags.append(Tag._create(TagCreated, id=aggregate_uuid("tag", number), name=f"t{number}", user_id=None))
        last = app.store(*tags)
        for tag in tags:
            split = split_uuid(tag.id)
            assert split is not None
            rows.append((split[1], tag.name, None, tag.created_on, tag.created_on, 0))
    return last, count / (time.perf_counter() - started), rows


async def project(target: Target, until: int) -> float:
    started = time.perf_counter()
    await ProjectionLoop(TagsProjector(), target).run(asyncio.Event(), until=until)
    return time.perf_counter() - started


def raw_insert(url: str, rows: list[tuple]) -> float:
    """The baseline: the same rows, INSERTed in batches of 1000 per transaction (executemany, pipelined)."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
        for ddl in TagsProjector().ddl():
            conn.execute(ddl.replace("{s}", "raw"))  # type: ignore[arg-type]
        conn.commit()
        started = time.perf_counter()
        for start in range(0, len(rows), 1000):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO raw.tags (id, name, user_id, created_at, updated_at, version)"
                    " VALUES (%s, %s, %s, %s, %s, %s)", rows[start:start + 1000])
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rebuild-events", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aidraw-bench-") as folder:
        nats_server = NatsServer(Path(folder) / "nats").start()
        pg = PostgresServer(Path(folder) / "pg").start()
        try:
            settings = Settings(stream_name="BENCH", subject_prefix="bench")
            app = CommandApp(settings, nats_server.url)
            last, append_rate, rows = append_tags(app, args.events)
            url = pg.create_database("projection")
            target = Target(nats_server.url, "BENCH", url)
            projected_s = asyncio.run(project(target, last))
            announcing = Target(nats_server.url, "BENCH", pg.create_database("announcing"), announce_prefix="bench")
            announced_s = asyncio.run(project(announcing, last))
            raw_s = raw_insert(pg.create_database("raw"), rows)
            proj_rate, raw_rate = args.events / projected_s, args.events / raw_s
            print(f"\nprojection of {args.events:,} TagCreated events (fsync on, one server each)")
            print(f"{'':38}{'events/s':>12}")
            print(f"{'appended (atomic batches of 500)':38}{append_rate:>12,.0f}")
            print(f"{'projected by the loop':38}{proj_rate:>12,.0f}")
            print(f"{'projected, announcing the changes':38}{args.events / announced_s:>12,.0f}")
            print(f"{'raw batched INSERT of the same rows':38}{raw_rate:>12,.0f}")
            print(f"{'ratio projector / raw':38}{proj_rate / raw_rate:>12.2f}")

            if args.rebuild_events:
                more = args.rebuild_events - args.events
                if more > 0:
                    t0 = time.perf_counter()
                    last, _, _ = append_tags(app, more)
                    print(f"\nappended {more:,} more events in {time.perf_counter() - t0:.1f} s")
                t0 = time.perf_counter()
                report = asyncio.run(rebuild(TagsProjector(), target, last))
                took = time.perf_counter() - t0
                print(f"rebuild of 'tags' from {last:,} events (log sequence): {took:.1f} s "
                      f"({last / took:,.0f} events/s), swapped at {report.position:,}")
            app.close()
            close_nats(nats_server.url)
        finally:
            pg.stop()
            nats_server.stop()


if __name__ == "__main__":
    main()
