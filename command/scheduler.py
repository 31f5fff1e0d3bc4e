"""The scheduler's decisions, without any I/O: which waiting task gets which place in the fair order, and which
tasks to release to the runners now.

It learns only from facts in the log, applied in log order (`apply`): a restarted scheduler that reads the log
again is in the same state. Its own decisions (`TaskEnqueued`, `TaskReleased`) are taken at once in memory (so
the next decision sees them) and recorded in the log by the loop (command/scheduler_loop.py); reading them back
changes nothing. The simulation (tests/unit/test_scheduler_fairness.py, bench/scheduler_sim.py) drives this same
class.

Just in time: per capability at most `lookahead` tasks are released and not yet started. A runner that starts a
task opens room, and the next task in fair order is released, so the order is decided as late as possible and a
newcomer's task overtakes everything not yet released.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from command.fair_queue import FairQueue
from events.ids import split_uuid
from events.tasks import (
    TaskCanceled,
    TaskCreated,
    TaskDeleted,
    TaskEnqueued,
    TaskFailed,
    TaskReleased,
    TaskStarted,
    TaskSucceeded,
    capability_of,
)

UNIT_PIXELS = 512 * 512
UNIT_STEPS = 20


TRAIN_STEP = 3  # a training step (forward, backward, update) costs about three denoising steps


def cost_of(data: dict[str, Any]) -> float:
    """Expected work, in units of one 512x512 image of 20 steps (never below a hundredth: every task costs). A
    train task: its steps x batch x resolution², each step weighing TRAIN_STEP denoising steps."""
    if data.get("kind") == "train":
        training = data.get("training", {})
        side = int(training.get("resolution", 512))
        work = TRAIN_STEP * int(training.get("steps", 1000)) * int(training.get("batch_size", 1)) * side * side
    else:
        pixels = int(data.get("width", 512)) * int(data.get("height", 512))
        work = int(data.get("batch_size", 1)) * int(data.get("num_inference_steps", UNIT_STEPS)) * pixels
    return max(0.01, round(work / (UNIT_PIXELS * UNIT_STEPS), 4))


@dataclass
class Entry:
    user_id: int
    capability: str
    cost: float
    state: str = "waiting"  # waiting (no order yet) -> queued -> released -> running


@dataclass
class Scheduler:
    lookahead: int = 2
    tasks: dict[int, Entry] = field(default_factory=dict)
    queues: dict[str, FairQueue] = field(default_factory=dict)
    # Kept beside `tasks` so that a decision costs what it decides, not a pass over every known task.
    _unplaced: dict[int, None] = field(default_factory=dict)  # state "waiting", in log order
    _released: Counter[str] = field(default_factory=Counter)  # state "released", per capability

    # Facts

    def created(self, task_id: int, user_id: int, capability: str, cost: float) -> None:
        if task_id not in self.tasks:
            self.tasks[task_id] = Entry(user_id, capability, cost)
            self._unplaced[task_id] = None

    def enqueued(self, task_id: int, capability: str, order: float, cost: float) -> None:
        entry = self.tasks.get(task_id)
        if entry is None:
            return
        if entry.state == "waiting":
            entry.capability, entry.cost = capability, cost
            self._set(task_id, entry, "queued")
        if entry.state == "queued":
            self._queue(capability).add(task_id, entry.user_id, order, cost)
        else:  # released before this was read back: the user's place still moves on
            queue = self._queue(capability)
            queue.finish[entry.user_id] = max(queue.finish.get(entry.user_id, 0.0), order + cost)
            queue.virtual = max(queue.virtual, order)

    def released(self, task_id: int) -> None:
        entry = self.tasks.get(task_id)
        if entry is not None and entry.state in ("waiting", "queued"):
            self._queue(entry.capability).release(task_id)
            self._set(task_id, entry, "released")

    def started(self, task_id: int) -> None:
        entry = self.tasks.get(task_id)
        if entry is not None:
            if entry.state == "queued":
                self._queue(entry.capability).release(task_id)
            self._set(task_id, entry, "running")

    def finished(self, task_id: int) -> None:
        entry = self.tasks.get(task_id)
        if entry is not None:
            self._queue(entry.capability).remove(task_id)
            self._set(task_id, entry, "finished")
            del self.tasks[task_id]

    def apply(self, event: Any) -> None:
        """One domain event of the log (others are ignored)."""
        split = split_uuid(event.originator_id)
        if split is None or split[0] != "task":
            return
        task_id = split[1]
        if isinstance(event, TaskCreated):
            if event.type in ("inference", "train"):
                self.created(task_id, event.user_id, capability_of(event.data), cost_of(event.data))
        elif isinstance(event, TaskEnqueued):
            self.enqueued(task_id, event.capability, event.order, event.cost)
        elif isinstance(event, TaskReleased):
            self.released(task_id)
        elif isinstance(event, TaskStarted):
            self.started(task_id)
        elif isinstance(event, TaskSucceeded | TaskFailed | TaskCanceled | TaskDeleted):
            self.finished(task_id)

    # Decisions

    def to_enqueue(self) -> list[tuple[int, str, float, float]]:
        """(task, capability, order, cost) for each task not yet in the fair order, oldest first; taken at once."""
        decided = []
        for task_id in list(self._unplaced):  # log order
            entry = self.tasks[task_id]
            queue = self._queue(entry.capability)
            order = queue.order_for(entry.user_id, entry.cost)
            self._set(task_id, entry, "queued")
            queue.add(task_id, entry.user_id, order, entry.cost)
            decided.append((task_id, entry.capability, order, entry.cost))
        return decided

    def to_release(self) -> list[tuple[int, str]]:
        """(task, capability) to hand to runners now, in fair order, up to the room of each capability."""
        chosen = []
        for capability, queue in self.queues.items():
            while self._released[capability] < self.lookahead and (task_id := queue.peek()) is not None:
                self.released(task_id)
                chosen.append((task_id, capability))
        return chosen

    def waiting_count(self, capability: str) -> int:
        return len(self._queue(capability))

    def _set(self, task_id: int, entry: Entry, state: str) -> None:
        if entry.state == "waiting":
            self._unplaced.pop(task_id, None)
        if entry.state == "released":
            self._released[entry.capability] -= 1
        if state == "released":
            self._released[entry.capability] += 1
        entry.state = state

    def _queue(self, capability: str) -> FairQueue:
        return self.queues.setdefault(capability, FairQueue())
