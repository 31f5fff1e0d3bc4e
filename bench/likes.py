"""A like by a user who has liked many images: snapshots (every 100 events, events/store/snapshots.py) against
replaying the whole history, on one nats-server started here. Prints figures, asserts nothing.

    .venv/bin/python -m bench.likes [--sizes 1,1000,5000,20000] [--repeat 9]

For each size, the user's likes are first brought to that many (atomic batches of 500), then one more like is
timed `--repeat` times (median): load the user's likes, like one image, store. The baseline is the same
command on an application without snapshots (a full replay), on the same server and stream.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

from aidraw.services import NatsServer
from bench import close_nats
from command.app import CommandApp
from command.likes import _likes_of
from infra.settings import Settings


class ReplayingApp(CommandApp):
    """The same application with snapshots off: every load replays the whole history."""

    is_snapshotting_enabled = False
    snapshotting_intervals: ClassVar[dict[Any, int]] = {}


def one_more_like(app: CommandApp, user: int, image: int) -> float:
    started = time.perf_counter()
    likes = _likes_of(app, user)
    likes.like(image)
    app.store(likes)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,1000,5000,20000")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        server = NatsServer(Path(folder) / "nats").start()
        try:
            settings = Settings.from_env()
            snapshots, replaying = CommandApp(settings, server.url), ReplayingApp(settings, server.url)
            print(f"{'likes before':>12} | {'snapshots ms':>12} | {'full replay ms':>14} | ratio")
            liked, image = 0, 10_000_000
            for size in sizes:
                while liked < size:
                    likes = _likes_of(snapshots, 1)
                    for i in range(liked, min(size, liked + 500)):
                        likes.like(i + 1)
                    snapshots.store(likes)
                    liked = min(size, liked + 500)
                fast, slow = [], []
                for _ in range(args.repeat):
                    fast.append(one_more_like(snapshots, 1, image := image + 1))
                    slow.append(one_more_like(replaying, 1, image := image + 1))
                liked += 2 * args.repeat
                f, s = statistics.median(fast), statistics.median(slow)
                print(f"{size:>12,} | {f:>12.1f} | {s:>14.1f} | {s / f:.1f}x")
            snapshots.close()
            replaying.close()
            close_nats(server.url)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
