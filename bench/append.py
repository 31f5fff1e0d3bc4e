"""Appending events: through the event store (an eventsourcing Application on events.store.jetstream) versus raw
nats-py publishes of the same payloads, on one nats-server started here (`sync_interval: always`, as
deployed), each side on a stream of its own with the same configuration. Prints figures, asserts nothing.

    .venv/bin/python -m bench.append [--events 20000] [--threads 16]

Rows (like with like: the raw side sends the same subjects, headers and bodies, expected sequence included):
- one event per save, one after another          vs js.publish awaited one by one;
- one event per save from N threads              vs N js.publish in flight at once;
- 500 events per save (one atomic batch)         vs raw atomic batches of 500;
- 1 event per append from asyncio, N in flight   vs N js.publish in flight (the async store, events/store/aio.py,
  as the GPU runner appends: on its own loop, no bridge thread; events mapped beforehand).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

import nats
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

from aidraw.services import NatsServer
from events.ids import subject_for
from events.store.aio import AsyncJetStreamStore
from events.store.bridge import NatsBridge
from events.store.stream import ensure_stream

BATCH = 500


class Drawing(Aggregate):
    """About 300 bytes of state per event, like a small domain event."""

    def __init__(self, title: str, prompt: str) -> None:
        self.title = title
        self.prompt = prompt


def new_drawings(count: int) -> list[Drawing]:
    prompt = "a lighthouse at dusk, oil on canvas " * 5
    return [Drawing(title=f"drawing {i}", prompt=prompt) for i in range(count)]


def timed(work: Callable[[], object], events: int) -> float:
    started = time.perf_counter()
    work()
    return events / (time.perf_counter() - started)


# ---- through the event store ----

def store_sequential(app: Application[UUID], count: int) -> float:
    drawings = new_drawings(count)

    def run() -> None:
        for drawing in drawings:
            app.save(drawing)

    return timed(run, count)


def store_threads(app: Application[UUID], count: int, threads: int) -> float:
    drawings = new_drawings(count)

    def run() -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(app.save, drawings, chunksize=64))

    return timed(run, count)


def store_batches(app: Application[UUID], count: int) -> float:
    drawings = new_drawings(count)

    def run() -> None:
        for start in range(0, count, BATCH):
            app.save(*drawings[start:start + BATCH])

    return timed(run, count)


def recorder_only(app: Application[UUID], count: int, per_write: int) -> float:
    """`insert_events` of events mapped beforehand: the store without eventsourcing's mapping (JSON)."""
    stored = [app.mapper.to_stored_event(e) for d in new_drawings(count) for e in d.collect_events()]

    def run() -> None:
        for start in range(0, count, per_write):
            app.recorder.insert_events(stored[start:start + per_write])

    return timed(run, count)


async def async_store_concurrent(url: str, stored: Sequence[StoredEvent], in_flight: int) -> float:
    nc = await nats.connect(url)
    store = AsyncJetStreamStore(nc, "BENCH", "bench")
    todo = iter(stored)

    async def worker() -> None:
        for event in todo:
            await store.insert_events([event])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    rate = len(stored) / (time.perf_counter() - started)
    await nc.close()
    return rate


# ---- raw nats-py on the same server ----

Payload = tuple[str, bytes, dict[str, str]]


def raw_payloads(app: Application[UUID], prefix: str, count: int) -> list[Payload]:
    """The messages the store would send for `count` new aggregates, on the raw stream's subjects."""
    out = []
    for drawing in new_drawings(count):
        stored: StoredEvent = app.mapper.to_stored_event(drawing.collect_events()[0])
        headers = {"Es-Topic": stored.topic, "Es-Version": str(stored.originator_version),
                   "Es-Id": str(stored.originator_id), "Nats-Expected-Last-Subject-Sequence": "0"}
        out.append((subject_for(prefix, drawing.id), stored.state, headers))
    return out


async def raw_sequential(url: str, payloads: Sequence[Payload]) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    started = time.perf_counter()
    for subject, body, headers in payloads:
        await js.publish(subject, body, headers=headers)
    rate = len(payloads) / (time.perf_counter() - started)
    await nc.close()
    return rate


async def raw_concurrent(url: str, payloads: Sequence[Payload], in_flight: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    todo = iter(payloads)

    async def worker() -> None:
        for subject, body, headers in todo:  # one shared iterator: `in_flight` publishes pending at once
            await js.publish(subject, body, headers=headers)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    rate = len(payloads) / (time.perf_counter() - started)
    await nc.close()
    return rate


async def raw_batches(url: str, payloads: Sequence[Payload]) -> float:
    nc = await nats.connect(url)
    started = time.perf_counter()
    for start in range(0, len(payloads), BATCH):
        chunk = payloads[start:start + BATCH]
        batch_id = uuid.uuid4().hex
        for number, (subject, body, headers) in enumerate(chunk[:-1], 1):
            await nc.publish(subject, body, headers={**headers, "Nats-Batch-Id": batch_id,
                                                     "Nats-Batch-Sequence": str(number)})
        subject, body, headers = chunk[-1]
        commit = {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(len(chunk)), "Nats-Batch-Commit": "1"}
        reply = await nc.request(subject, body, timeout=30, headers={**headers, **commit})
        if b'"error"' in reply.data:
            raise RuntimeError(reply.data.decode())
    rate = len(payloads) / (time.perf_counter() - started)
    await nc.close()
    return rate


Measure = Callable[[int], float]  # events -> events per second


def best_of(rounds: int, events: int, store: Measure, raw: Measure) -> tuple[float, float]:
    """Alternate the two sides, best round of each: the server's speed drifts (page cache, file growth)
    and a shared 2-core machine is noisy, so one run of each side in turn would favour whichever ran later."""
    stores, raws = [], []
    for _ in range(rounds):
        raws.append(raw(events))
        stores.append(store(events))
    return max(stores), max(raws)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000, help="events per round, concurrent and batch rows")
    parser.add_argument("--sequential", type=int, default=2_000, help="events per round, one-by-one rows")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aidraw-bench-") as folder:
        server = NatsServer(Path(folder) / "nats").start()
        try:
            url, t, rounds = server.url, args.threads, args.rounds
            bridge = NatsBridge.shared(url)
            ensure_stream(bridge, "RAW", "raw")  # the same configuration as the store's stream
            app: Application[UUID] = Application(env={
                "PERSISTENCE_MODULE": "events.store.jetstream", "NATS_URL": url,
                "NATS_STREAM": "BENCH", "NATS_SUBJECT_PREFIX": "bench"})

            def raw_one(n: int) -> float:
                return asyncio.run(raw_sequential(url, raw_payloads(app, "raw", n)))

            def raw_many(n: int) -> float:
                return asyncio.run(raw_concurrent(url, raw_payloads(app, "raw", n), t))

            def raw_batch(n: int) -> float:
                return asyncio.run(raw_batches(url, raw_payloads(app, "raw", n)))

            def async_many(n: int) -> float:
                stored = [app.mapper.to_stored_event(e) for d in new_drawings(n) for e in d.collect_events()]
                return asyncio.run(async_store_concurrent(url, stored, t))

            best_of(1, 500, lambda n: store_sequential(app, n), raw_one)  # warm up both paths
            table: list[tuple[str, int, Measure, Measure]] = [
                ("1 event/save, sequential | js.publish awaited", args.sequential,
                 lambda n: store_sequential(app, n), raw_one),
                ("  recorder only (insert_events, pre-mapped)", args.sequential,
                 lambda n: recorder_only(app, n, 1), raw_one),
                (f"1 event/save, {t} threads | {t} js.publish in flight", args.events,
                 lambda n: store_threads(app, n, t), raw_many),
                (f"{BATCH} events/save (atomic batch) | raw batches of {BATCH}", args.events,
                 lambda n: store_batches(app, n), raw_batch),
                ("  recorder only (insert_events, pre-mapped)", args.events,
                 lambda n: recorder_only(app, n, BATCH), raw_batch),
                (f"1 event/append, asyncio, {t} in flight | {t} js.publish in flight", args.events,
                 async_many, raw_many),
            ]
            rows = [(label, n, *best_of(rounds, n, store, raw)) for label, n, store, raw in table]
            app.close()
            bridge.close()
        finally:
            server.stop()

    print(f"nats-server {server.binary()}, sync_interval: always, file storage; {os.cpu_count()} CPUs; "
          f"best of {rounds} alternating rounds per side")
    print(f"{'store row | raw row':<62} {'events':>7} {'store ev/s':>11} {'raw ev/s':>10} {'store/raw':>10}")
    for label, events, store, raw in rows:
        print(f"{label:<62} {events:>7} {store:>11,.0f} {raw:>10,.0f} {store / raw:>10.2f}")


if __name__ == "__main__":
    main()
