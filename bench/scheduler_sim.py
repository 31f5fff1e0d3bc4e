"""Fair share, simulated: many users, several runners, the real scheduler (command/scheduler.py) deciding the
order, against first-come-first-served on the same arrivals. Simulated time (no servers, no sleeping): prints
the wait-time distribution per kind of user. Asserts nothing; tests/unit/test_scheduler_fairness.py checks the
bounds.

    .venv/bin/python -m bench.scheduler_sim [--runners 4] [--flood 1000] [--light 30] [--seed 1]

The work queue is modelled as JetStream's: a FIFO of released tasks per capability that idle runners pull from.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
from collections import deque
from dataclasses import dataclass, field

from command.scheduler import Scheduler


@dataclass(frozen=True)
class Arrival:
    time: float
    task_id: int
    user_id: int
    cost: float = 1.0
    capability: str = "default"


@dataclass
class Outcome:
    waits: dict[int, list[float]] = field(default_factory=dict)  # user -> waits (start - arrival), seconds

    def of(self, users: set[int]) -> list[float]:
        return sorted(w for user in users for w in self.waits.get(user, []))


def simulate(arrivals: list[Arrival], runners: int, seconds_per_cost: float = 1.0, lookahead: int = 2,
             fair: bool = True) -> Outcome:
    """Run every arrival to its end; `fair=False` gives FIFO (every task counted as one user's)."""
    scheduler = Scheduler(lookahead=lookahead)
    work: dict[str, deque[int]] = {}
    tasks = {a.task_id: a for a in arrivals}
    events: list[tuple[float, int, str, int]] = [(a.time, n, "arrive", a.task_id) for n, a in enumerate(arrivals)]
    heapq.heapify(events)
    sequence = len(events)
    idle = runners
    outcome = Outcome()

    def decide() -> None:
        scheduler.to_enqueue()
        for task_id, capability in scheduler.to_release():
            work.setdefault(capability, deque()).append(task_id)

    while events:
        now, _, kind, task_id = heapq.heappop(events)
        arrival = tasks[task_id]
        if kind == "arrive":
            scheduler.created(task_id, arrival.user_id if fair else 0, arrival.capability, arrival.cost)
        else:  # "finish": the runner is free again
            scheduler.finished(task_id)
            idle += 1
        decide()
        while idle and any(work.values()):
            queue = next(q for q in work.values() if q)
            started = queue.popleft()
            scheduler.started(started)
            idle -= 1
            outcome.waits.setdefault(tasks[started].user_id, []).append(now - tasks[started].time)
            sequence += 1
            heapq.heappush(events, (now + tasks[started].cost * seconds_per_cost, sequence, "finish", started))
            decide()
    return outcome


def flood_and_trickle(flood: int, light: int, seed: int, span: float = 200.0) -> tuple[list[Arrival], set[int]]:
    """User 1 queues `flood` tasks at once; `light` other users each send one task at a random moment."""
    rng = random.Random(seed)
    arrivals = [Arrival(0.0, n + 1, 1) for n in range(flood)]
    arrivals += [Arrival(rng.uniform(0, span), flood + n + 1, 100 + n) for n in range(light)]
    return arrivals, {100 + n for n in range(light)}


def many_users(users: int, seed: int, span: float = 300.0) -> list[Arrival]:
    """Users with very different appetites: most send a few tasks, some send hundreds, at random moments."""
    rng = random.Random(seed)
    arrivals: list[Arrival] = []
    for user in range(1, users + 1):
        count = rng.choice([1, 1, 2, 3, 5, 10, 50, 200])
        start = rng.uniform(0, span)
        arrivals += [Arrival(start + rng.uniform(0, 5), 0, user, cost=rng.choice([0.5, 1.0, 2.0]))
                     for _ in range(count)]
    return [Arrival(a.time, n + 1, a.user_id, a.cost) for n, a in enumerate(sorted(arrivals, key=lambda a: a.time))]


def _figures(waits: list[float]) -> str:
    if not waits:
        return "none"
    p95 = waits[min(len(waits) - 1, int(len(waits) * 0.95))]
    return f"p50 {statistics.median(waits):8.1f} s   p95 {p95:8.1f} s   max {waits[-1]:8.1f} s   (n={len(waits)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--light", type=int, default=30)
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    arrivals, light = flood_and_trickle(args.flood, args.light, args.seed)
    print(f"One user queues {args.flood} tasks at t=0; {args.light} users send one each within 200 s; "
          f"{args.runners} runners, 1 s per task.")
    for name, fair in (("fair (scheduler)", True), ("FIFO (baseline)", False)):
        outcome = simulate(arrivals, args.runners, fair=fair)
        print(f"  {name:17} single-task users: {_figures(outcome.of(light))}")
        print(f"  {'':17} the flooder:       {_figures(outcome.of({1}))}")
    mixed = many_users(args.users, args.seed)
    counts: dict[int, int] = {}
    for a in mixed:
        counts[a.user_id] = counts.get(a.user_id, 0) + 1
    small = {u for u, n in counts.items() if n <= 3}
    big = {u for u, n in counts.items() if n >= 50}
    print(f"\n{args.users} users, {len(mixed)} tasks of cost 0.5..2 s, {args.runners} runners:")
    for name, fair in (("fair (scheduler)", True), ("FIFO (baseline)", False)):
        outcome = simulate(mixed, args.runners, fair=fair)
        print(f"  {name:17} users with <= 3 tasks: {_figures(outcome.of(small))}")
        print(f"  {'':17} users with >= 50:     {_figures(outcome.of(big))}")


if __name__ == "__main__":
    main()
