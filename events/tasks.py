"""Tasks: generation (and later training) work a user asked for, and its lifecycle as facts.

created -> waiting -> running (server, attempt) -> success (image ids) | error (reason) | canceled.
Progress milestones (every 25 %) are domain events; step-by-step progress and previews are not: they go on
short-lived subjects (DESIGN.md). Which transition is allowed, and who may cancel, is decided in command/tasks.py
only; these classes just record what was decided.

`UserTasks*` belong to a per-user aggregate (`aidraw.user_tasks.<user id>`) that holds the user's unfinished
tasks: appending to it with optimistic concurrency is what makes the per-user cap hold under concurrent requests.
"""

from __future__ import annotations

from typing import Any

from events.base import Changed, Created, Deleted

RELEASED_REASON = "released to the runners: it starts when one is free"


def capability_of(data: dict[str, Any]) -> str:
    """What a runner must serve to run a task with this recipe: its base model (`default`: the configured default
    base), prefixed `train-` for a training task (`data["kind"] == "train"`, docs/training.md), so that a runner
    can be told to serve one kind only. A recipe that names its `capability` (resolved when the task was asked)
    uses it. The scheduler's queues, the work subjects and the read model's `capability` all derive from it."""
    if data.get("kind") == "train":
        return "train-" + str(data.get("base_capability") or "default")
    if data.get("capability"):
        return str(data["capability"])
    model = data.get("model_id")
    return f"base-{model}" if model else "default"


class TaskCreated(Created):
    """A task as asked. `data` is the whole recipe as checked (for inference: prompt, negative_prompt,
    num_inference_steps, guidance_scale, scheduler, seed (drawn when the client sent none), width, height,
    batch_size, from_image, strength, model_id, loras); `tag_ids`, `public` and `name` are for the images it
    will make."""

    user_id: int
    type: str  # inference | train
    name: str
    data: dict[str, Any]
    tag_ids: list[int]
    public: bool


class TaskWaiting(Changed):
    """Queued: it waits for a runner. `reason` says why it is not running yet."""

    reason: str


class TaskStarted(Changed):
    """A runner took it (`attempt` counts deliveries of the work item, from 1)."""

    server_id: int | None
    server_name: str
    attempt: int


class TaskProgressed(Changed):
    """A milestone (0..100)."""

    progress: int


class TaskSucceeded(Changed):
    """Inference: the images made. Training: `model_path` (the artefact's blob key) and the cover in `image_ids`
    (none when the runner could make none); `prompt_handling` None."""

    class_version = 2

    image_ids: list[int]
    prompt_handling: str | None  # how the prompt met the text encoder's 77 tokens: whole | chunked
    model_path: str | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["model_path"] = None  # v1: inference only


def task_result(image_ids: list[int], prompt_handling: str | None, model_path: str | None) -> dict[str, Any]:
    """A succeeded task's `result` as clients see it: the images and how the prompt was handled (inference), or
    the model's file and the cover (training)."""
    if model_path is not None:
        return {"model_path": model_path, "image_ids": list(image_ids)}
    return {"image_ids": list(image_ids), "prompt_handling": prompt_handling}


class TaskFailed(Changed):
    error: str  # a reason the user can act on


class TaskCanceled(Changed):
    by_user_id: int | None  # None: the system canceled it (its owner's account was deleted)
    progress: int  # where it stood


class TaskDeleted(Deleted):
    pass


class UserTasksOpened(Created):
    user_id: int


class UserTaskAdded(Changed):
    task_id: int


class UserTaskFinished(Changed):
    task_id: int


class TaskEnqueued(Changed):
    """The scheduler placed the waiting task in the fair queue of `capability` at `order` (command/fair_queue.py);
    `cost` is its expected work in units of one 512x512 image of 20 steps."""

    capability: str
    order: float
    cost: float


class TaskReleased(Changed):
    """The scheduler handed the task to the runners of its capability (the work queue): it starts next."""

    capability: str
