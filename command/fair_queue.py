"""Fair order among users: start-time fair queuing (SFQ), one queue per capability.

Each waiting task gets an `order` when it joins the queue: `max(V, F_user)`, where V is the order of the last
task released to runners and F_user is where the user's previous task ends (its order plus its cost). Tasks are
released lowest order first. A user who queues 1,000 tasks at once gets orders V, V+1, ..., V+999; another user's
single task, queued later, gets V' (the current V): it goes next, after at most the tasks already released. So
one user's flood holds back another's task by about one task per runner, whatever its size (docs/tasks.md).

The orders are decided here once and recorded in the log (`TaskEnqueued.order`), so that a restarted scheduler,
the read model (queue positions) and an audit all see the same order without recomputing it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field


@dataclass
class FairQueue:
    virtual: float = 0.0  # V: the order of the last task released
    finish: dict[int, float] = field(default_factory=dict)  # F_user: where each user's last queued task ends
    _heap: list[tuple[float, int]] = field(default_factory=list)
    _orders: dict[int, float] = field(default_factory=dict)  # queued (not yet released) task -> its order

    def order_for(self, user_id: int, cost: float) -> float:
        """The order a new task of `user_id` gets now (nothing changes until `add`)."""
        return max(self.virtual, self.finish.get(user_id, 0.0))

    def add(self, task_id: int, user_id: int, order: float, cost: float) -> None:
        """Put a task in the queue at its recorded order (again after a restart: the same result)."""
        self.finish[user_id] = max(self.finish.get(user_id, 0.0), order + cost)
        if task_id not in self._orders:
            self._orders[task_id] = order
            heapq.heappush(self._heap, (order, task_id))

    def peek(self) -> int | None:
        """The task to release next, if any."""
        while self._heap and self._orders.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # removed earlier (canceled, released): dropped lazily
        return self._heap[0][1] if self._heap else None

    def release(self, task_id: int) -> None:
        order = self._orders.pop(task_id, None)
        if order is not None:
            self.virtual = max(self.virtual, order)

    def remove(self, task_id: int) -> None:
        """A queued task left without running (canceled, deleted)."""
        self._orders.pop(task_id, None)

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._orders
