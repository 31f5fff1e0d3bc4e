"""Tasks: the aggregate and every rule of the task lifecycle, in one place.

    created -> waiting -> running -> success | error          (running -> waiting: a runner died; redelivered)
                  \\-----------\\-----> canceled                (by the owner or an admin, while unfinished)

Users change a task only by canceling or deleting it. Runners only report facts (started, progressed,
produced, failed) and a process manager turns each report into a call here; a report that no longer fits (the
task was canceled or finished meanwhile, or a redelivery reports a success twice) is ignored and changes
nothing: the methods answer whether they recorded anything. Who may see a task: its owner and admins; anyone
else is told it does not exist (404).

`UserTasks` is the per-user aggregate that holds the owner's unfinished tasks. A task is added to it in the same
atomic write that creates the task, and taken out in the write that finishes it, so the per-user cap on
unfinished tasks holds even when one user sends many requests at once (the log refuses the second of two writes
based on the same version, and the command retries on the new state).
"""

from __future__ import annotations

from typing import Any, ClassVar

from command.aggregate import NumberedAggregate
from command.app import CommandApp, retry_on_conflict
from command.training_follow import followers
from events.base import EventHandlers
from events.ids import aggregate_uuid
from events.tasks import (
    RELEASED_REASON,
    TaskCanceled,
    TaskDeleted,
    TaskEnqueued,
    TaskFailed,
    TaskProgressed,
    TaskReleased,
    TaskStarted,
    TaskSucceeded,
    TaskWaiting,
    UserTaskAdded,
    UserTaskFinished,
    UserTasksOpened,
)
from infra.actor import Actor
from infra.errors import Conflict, NotFound, RateLimited

STATUSES = ("initial", "ready", "waiting", "running", "success", "error", "canceled")
FINISHED = frozenset({"success", "error", "canceled"})
UNFINISHED = frozenset(STATUSES) - FINISHED
TYPES = ("inference", "train")
MILESTONE = 25  # progress is recorded as a domain event every 25 %; finer steps go on the progress subject
CAP_RETRY_AFTER_S = 10
# The one table of allowed transitions; every method below checks it.
NEXT: dict[str, frozenset[str]] = {
    "initial": frozenset({"waiting", "canceled"}),
    "ready": frozenset({"waiting", "canceled"}),
    "waiting": frozenset({"running", "error", "canceled"}),  # error: no runner could ever serve it
    "running": frozenset({"running", "waiting", "success", "error", "canceled"}),  # running: a redelivery
    "success": frozenset(),
    "error": frozenset(),
    "canceled": frozenset(),
}


def allowed(current: str, new: str) -> bool:
    return new in NEXT[current]


class Task(NumberedAggregate):
    def __init__(self, user_id: int, type: str, name: str, data: dict[str, Any], tag_ids: list[int],
                 public: bool) -> None:
        self.user_id = user_id
        self.type = type
        self.name = name
        self.data = data
        self.tag_ids = tag_ids
        self.public = public
        self.status = "initial"
        self.waiting_reason: str | None = None
        self.progress = 0
        self.server_id: int | None = None
        self.server_name: str | None = None
        self.attempt = 0
        self.capability: str | None = None
        self.queue_order: float | None = None
        self.released = False
        self.image_ids: list[int] = []
        self.prompt_handling: str | None = None
        self.model_path: str | None = None
        self.error: str | None = None
        self.started_at: Any = None
        self.finished_at: Any = None
        self.deleted = False

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    # Who may do what

    def check_visible_to(self, actor: Actor) -> None:
        """Owner or admin; to anyone else the task does not exist."""
        if not (actor.is_admin or actor.owns(self.user_id)):
            raise NotFound(f"No task with id {self.number}.")

    # What users do

    def cancel(self, actor: Actor) -> bool:
        """Cancel an unfinished task (owner or admin). Canceling a canceled task again changes nothing; a task
        that already succeeded or failed cannot be canceled (409)."""
        self.check_visible_to(actor)
        if self.status == "canceled":
            return False
        if not allowed(self.status, "canceled"):
            raise Conflict(f"The task has already finished ({self.status}); only an unfinished task can be "
                           "canceled.")
        self.trigger_event(TaskCanceled, by_user_id=actor.user_id, progress=self.progress)
        return True

    def delete(self, actor: Actor) -> None:
        """Delete (owner or admin); an unfinished task is canceled first, in the same write."""
        self.check_visible_to(actor)
        if not self.finished:
            self.cancel(actor)
        self.trigger_event(TaskDeleted)

    # What the system records (the scheduler, and the process manager from runner reports)

    def queue(self, reason: str) -> bool:
        if self.status == "waiting" and self.waiting_reason == reason:
            return False
        if not allowed(self.status, "waiting"):
            return False
        self.trigger_event(TaskWaiting, reason=reason)
        return True

    def enqueue(self, capability: str, order: float, cost: float) -> bool:
        """The scheduler's place for a waiting task in the fair order (once)."""
        if self.status != "waiting" or self.queue_order is not None:
            return False
        self.trigger_event(TaskEnqueued, capability=capability, order=order, cost=cost)
        return True

    def release(self) -> bool:
        """The scheduler hands the task to the runners (once, while it waits)."""
        if self.status != "waiting" or self.released:
            return False
        self.trigger_event(TaskReleased, capability=self.capability or "default")
        return True

    def start(self, server_id: int | None, server_name: str, attempt: int) -> bool:
        """A runner began attempt `attempt`. An older attempt's report after a newer one is ignored."""
        if not allowed(self.status, "running") or attempt <= self.attempt:
            return False
        self.trigger_event(TaskStarted, server_id=server_id, server_name=server_name, attempt=attempt)
        return True

    def reach(self, progress: int) -> bool:
        """Record a milestone: only running tasks, only forward, only at MILESTONE steps (below 100)."""
        milestone = min(99, max(0, progress)) // MILESTONE * MILESTONE
        if self.status != "running" or milestone <= self.progress:
            return False
        self.trigger_event(TaskProgressed, progress=milestone)
        return True

    def succeed(self, image_ids: list[int], prompt_handling: str | None, model_path: str | None = None) -> bool:
        """Inference: its images (at least one). Training: the model's file (`model_path`) and the cover, if any."""
        if not allowed(self.status, "success") or not (image_ids or model_path):
            return False
        self.trigger_event(TaskSucceeded, image_ids=list(image_ids), prompt_handling=prompt_handling,
                           model_path=model_path)
        return True

    def fail(self, error: str) -> bool:
        if not allowed(self.status, "error"):
            return False
        self.trigger_event(TaskFailed, error=error)
        return True

    def _task_waiting(self, event: TaskWaiting) -> None:
        self.status, self.waiting_reason = "waiting", event.reason
        self.server_id = self.server_name = None

    def _task_enqueued(self, event: TaskEnqueued) -> None:
        self.capability, self.queue_order = event.capability, event.order

    def _task_released(self, event: TaskReleased) -> None:
        self.released = True
        self.waiting_reason = RELEASED_REASON

    def _task_started(self, event: TaskStarted) -> None:
        self.status, self.waiting_reason = "running", None
        self.server_id, self.server_name, self.attempt = event.server_id, event.server_name, event.attempt
        self.progress = 0
        self.started_at = self.started_at or event.timestamp

    def _task_progressed(self, event: TaskProgressed) -> None:
        self.progress = event.progress

    def _task_succeeded(self, event: TaskSucceeded) -> None:
        self.status, self.progress, self.finished_at = "success", 100, event.timestamp
        self.image_ids, self.prompt_handling = list(event.image_ids), event.prompt_handling
        self.model_path = event.model_path

    def _task_failed(self, event: TaskFailed) -> None:
        self.status, self.error, self.finished_at = "error", event.error, event.timestamp

    def _task_canceled(self, event: TaskCanceled) -> None:
        self.status, self.waiting_reason, self.finished_at = "canceled", None, event.timestamp

    def _task_deleted(self, event: TaskDeleted) -> None:
        self.deleted = True

    WHEN: ClassVar[EventHandlers] = {
        TaskWaiting: _task_waiting,
        TaskEnqueued: _task_enqueued,
        TaskReleased: _task_released,
        TaskStarted: _task_started,
        TaskProgressed: _task_progressed,
        TaskSucceeded: _task_succeeded,
        TaskFailed: _task_failed,
        TaskCanceled: _task_canceled,
        TaskDeleted: _task_deleted,
    }


class UserTasks(NumberedAggregate):
    """One user's unfinished tasks (its number is the user's id)."""

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.unfinished: list[int] = []

    def add(self, task_id: int, cap: int) -> None:
        if len(self.unfinished) >= cap:
            raise RateLimited(f"You have {len(self.unfinished)} unfinished tasks, the most allowed at once: wait "
                              "for some to finish, or cancel some (PATCH /api/tasks/{id} {\"status\": "
                              "\"canceled\"}).", retry_after=CAP_RETRY_AFTER_S)
        self.trigger_event(UserTaskAdded, task_id=task_id)

    def finish(self, task_id: int) -> None:
        if task_id in self.unfinished:
            self.trigger_event(UserTaskFinished, task_id=task_id)

    def _user_task_added(self, event: UserTaskAdded) -> None:
        self.unfinished.append(event.task_id)

    def _user_task_finished(self, event: UserTaskFinished) -> None:
        self.unfinished.remove(event.task_id)

    WHEN: ClassVar[EventHandlers] = {
        UserTaskAdded: _user_task_added,
        UserTaskFinished: _user_task_finished,
    }


def user_tasks(app: CommandApp, user_id: int) -> UserTasks:
    """The user's aggregate, opened (not yet stored) on first use."""
    try:
        return app.load(UserTasks, "user_tasks", user_id)
    except NotFound:
        return UserTasks._create(UserTasksOpened, id=aggregate_uuid("user_tasks", user_id), user_id=user_id)


def load_task(app: CommandApp, actor: Actor, number: int) -> Task:
    task = app.load(Task, "task", number)
    task.check_visible_to(actor)
    return task


def cancel_task(app: CommandApp, actor: Actor, number: int) -> tuple[Task, int]:
    """Cancel (owner or admin); the owner's unfinished-task entry, and a train task's model (back to its status
    before the request), go in the same write. 0: nothing changed."""
    def attempt() -> tuple[Task, int]:
        task = load_task(app, actor, number)
        if not task.cancel(actor):
            return task, 0
        mine = user_tasks(app, task.user_id)
        mine.finish(task.number)
        return task, app.store(task, mine, *followers(app, task))

    return retry_on_conflict(attempt)


def delete_task(app: CommandApp, actor: Actor, number: int) -> int:
    """Delete (owner or admin), canceling it first if it is unfinished. The images it made stay."""
    def attempt() -> int:
        task = load_task(app, actor, number)
        task.delete(actor)
        mine = user_tasks(app, task.user_id)
        mine.finish(task.number)
        return app.store(task, mine, *followers(app, task))

    return retry_on_conflict(attempt)
