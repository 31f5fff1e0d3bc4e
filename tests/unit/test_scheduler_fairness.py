"""The scheduler's fair order and just-in-time release (command/scheduler.py, command/fair_queue.py), driven by
the simulation of bench/scheduler_sim.py: the same code the scheduler process runs."""

from __future__ import annotations

from bench.scheduler_sim import flood_and_trickle, many_users, simulate
from command.fair_queue import FairQueue
from command.scheduler import Scheduler, cost_of
from events.tasks import capability_of


def test_a_flood_holds_back_another_users_single_task_by_about_one_run_per_runner() -> None:
    arrivals, light = flood_and_trickle(flood=1000, light=30, seed=3)
    fair = simulate(arrivals, runners=4, seconds_per_cost=1.0, lookahead=2)
    fifo = simulate(arrivals, runners=4, seconds_per_cost=1.0, lookahead=2, fair=False)
    assert max(fair.of(light)) <= 2.0  # a run (1 s) for a runner to free up, plus the 2 already released
    assert max(fifo.of(light)) > 50  # the baseline really does starve them: the bound above means something
    assert len(fair.of({1})) == 1000  # and the flooder's tasks all run


def test_with_many_users_small_users_wait_little_and_every_task_runs() -> None:
    arrivals = many_users(60, seed=5)
    outcome = simulate(arrivals, runners=4, lookahead=2)
    assert sum(len(w) for w in outcome.waits.values()) == len(arrivals)
    counts: dict[int, int] = {}
    for a in arrivals:
        counts[a.user_id] = counts.get(a.user_id, 0) + 1
    small = outcome.of({u for u, n in counts.items() if n == 1})
    assert max(small) <= 15.0  # users arriving together share the runners; nobody waits behind a backlog


def test_orders_follow_start_time_fair_queuing() -> None:
    queue = FairQueue()
    for n in range(5):
        queue.add(n + 1, user_id=1, order=queue.order_for(1, 1.0), cost=1.0)
    assert [queue._orders[n] for n in range(1, 6)] == [0, 1, 2, 3, 4]
    queue.release(queue.peek() or 0)
    queue.add(99, user_id=2, order=queue.order_for(2, 1.0), cost=1.0)  # a newcomer starts at V
    assert queue._orders[99] == 0 and queue.peek() == 99  # ahead of the first user's 4 still queued
    assert queue.order_for(1, 1.0) == 5  # the first user's next task goes after their backlog


def test_only_lookahead_tasks_wait_released_and_a_start_opens_room() -> None:
    scheduler = Scheduler(lookahead=2)
    for n in range(1, 6):
        scheduler.created(n, user_id=1, capability="default", cost=1.0)
    scheduler.to_enqueue()
    assert [t for t, _ in scheduler.to_release()] == [1, 2]
    assert scheduler.to_release() == []
    scheduler.started(1)
    assert scheduler.to_release() == [(3, "default")]
    scheduler.finished(4)  # canceled while queued: it never goes out
    scheduler.started(2)
    assert scheduler.to_release() == [(5, "default")]


def test_a_scheduler_rebuilt_from_the_recorded_decisions_continues_identically() -> None:
    live = Scheduler(lookahead=1)
    facts: list[tuple[str, tuple[object, ...]]] = []
    for n, user in enumerate([1, 1, 1, 2, 3, 1, 2], start=1):
        live.created(n, user, "default", 1.0)
        facts.append(("created", (n, user, "default", 1.0)))
    for task, capability, order, cost in live.to_enqueue():
        facts.append(("enqueued", (task, capability, order, cost)))
    for task, _ in live.to_release():
        facts.append(("released", (task,)))
    rebuilt = Scheduler(lookahead=1)
    for name, args in facts:
        getattr(rebuilt, name)(*args)
    for scheduler in (live, rebuilt):
        scheduler.created(8, 4, "default", 1.0)
        scheduler.to_enqueue()
    order_live: list[int] = []
    order_rebuilt: list[int] = []
    for scheduler, out in ((live, order_live), (rebuilt, order_rebuilt)):
        while True:
            running = [t for t, e in scheduler.tasks.items() if e.state == "released"]
            for task in running:
                scheduler.started(task)
                scheduler.finished(task)
            chosen = scheduler.to_release()
            if not chosen:
                break
            out += [t for t, _ in chosen]
    assert order_live == order_rebuilt and len(order_live) == 7


def test_capability_and_cost_come_from_the_recipe() -> None:
    assert capability_of({"model_id": None}) == "default"
    assert capability_of({"model_id": 42}) == "base-42"
    assert cost_of({"width": 512, "height": 512, "num_inference_steps": 20, "batch_size": 1}) == 1.0
    assert cost_of({"width": 1024, "height": 512, "num_inference_steps": 40, "batch_size": 2}) == 8.0
