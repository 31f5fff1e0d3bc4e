"""The task lifecycle's rules (command/tasks.py), without any server: allowed transitions, who may cancel, late
reports ignored, the per-user cap."""

from __future__ import annotations

import pytest

from command.tasks import NEXT, STATUSES, Task, UserTasks, allowed
from events.ids import aggregate_uuid
from events.tasks import TaskCreated, UserTasksOpened
from infra.actor import Actor
from infra.errors import Conflict, NotFound, RateLimited

OWNER = Actor(user_id=7, role="user")
OTHER = Actor(user_id=8, role="user")
ADMIN = Actor(user_id=9, role="admin")


def new_task(number: int = 1) -> Task:
    task = Task._create(TaskCreated, id=aggregate_uuid("task", number), user_id=OWNER.user_id, type="inference",
                        name="a cat", data={"prompt": "a cat"}, tag_ids=[], public=True)
    task.queue("queued")
    return task


def kinds(task: Task) -> list[str]:
    return [type(event).__name__ for event in task.collect_events()]


def test_a_new_task_is_created_then_waiting() -> None:
    task = new_task()
    assert task.status == "waiting" and task.waiting_reason == "queued"
    assert kinds(task) == ["TaskCreated", "TaskWaiting"]


def test_the_transition_table_names_every_status_and_finished_ones_lead_nowhere() -> None:
    assert set(NEXT) == set(STATUSES)
    for finished in ("success", "error", "canceled"):
        assert not any(allowed(finished, new) for new in STATUSES)


def test_a_run_records_server_attempt_milestones_and_the_images() -> None:
    task = new_task()
    assert task.start(server_id=3, server_name="gpu-1", attempt=1)
    assert task.reach(10) is False  # below the first milestone
    assert task.reach(60) and task.progress == 50
    assert task.reach(55) is False  # never backwards
    assert task.succeed([11, 12], "whole")
    assert (task.status, task.progress, task.image_ids, task.server_name) == ("success", 100, [11, 12], "gpu-1")
    assert task.finished_at is not None and task.started_at is not None


def test_a_redelivered_attempt_restarts_but_an_older_attempt_is_ignored() -> None:
    task = new_task()
    assert task.start(1, "a", attempt=1)
    assert task.start(2, "b", attempt=2) and task.server_name == "b"
    assert task.start(1, "a", attempt=1) is False and task.server_name == "b"


def test_a_second_success_report_is_ignored() -> None:
    task = new_task()
    task.start(1, "a", 1)
    assert task.succeed([5], "whole")
    task.collect_events()
    assert task.succeed([6], "whole") is False and task.fail("late") is False
    assert task.image_ids == [5] and task.collect_events() == []


@pytest.mark.parametrize("actor", [OWNER, ADMIN], ids=["owner", "admin"])
def test_the_owner_or_an_admin_cancels_and_late_reports_change_nothing(actor: Actor) -> None:
    task = new_task()
    task.start(1, "a", 1)
    assert task.cancel(actor)
    task.collect_events()
    assert task.status == "canceled"
    assert not task.reach(75) and not task.succeed([1], "whole") and not task.fail("boom")
    assert not task.start(1, "a", 2) and not task.queue("again")
    assert task.collect_events() == [] and task.status == "canceled"


def test_another_user_cannot_cancel_or_even_see_the_task() -> None:
    with pytest.raises(NotFound):
        new_task().cancel(OTHER)


def test_canceling_twice_changes_nothing_and_a_finished_task_cannot_be_canceled() -> None:
    task = new_task()
    assert task.cancel(OWNER)
    assert task.cancel(OWNER) is False
    done = new_task(2)
    done.start(1, "a", 1)
    done.fail("out of memory")
    with pytest.raises(Conflict):
        done.cancel(OWNER)


def test_deleting_an_unfinished_task_cancels_it_first() -> None:
    task = new_task()
    task.collect_events()
    task.delete(OWNER)
    assert kinds(task) == ["TaskCanceled", "TaskDeleted"]
    finished = new_task(2)
    finished.fail("no runner serves this base")
    finished.collect_events()
    finished.delete(ADMIN)
    assert kinds(finished) == ["TaskDeleted"]


def test_the_cap_counts_unfinished_tasks_only() -> None:
    mine = UserTasks._create(UserTasksOpened, id=aggregate_uuid("user_tasks", 7), user_id=7)
    mine.add(1, cap=2)
    mine.add(2, cap=2)
    with pytest.raises(RateLimited) as refused:
        mine.add(3, cap=2)
    assert refused.value.status == 429
    mine.finish(1)
    mine.finish(1)  # twice: no second event
    mine.add(3, cap=2)
    assert mine.unfinished == [2, 3]
    assert [type(e).__name__ for e in mine.collect_events()].count("UserTaskFinished") == 1


def test_the_scheduler_places_and_releases_a_waiting_task_once() -> None:
    task = new_task()
    assert task.enqueue("default", 3.0, 1.0) and task.enqueue("default", 4.0, 1.0) is False
    assert task.release() and task.release() is False
    assert (task.capability, task.queue_order, task.released, task.status) == ("default", 3.0, True, "waiting")
    assert task.waiting_reason is not None and task.waiting_reason.startswith("released")
    canceled = new_task(2)
    canceled.cancel(OWNER)
    assert canceled.enqueue("default", 0.0, 1.0) is False and canceled.release() is False
