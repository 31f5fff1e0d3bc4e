"""What a runner reports, turned into task transitions and images: the command side of the runner's reports.

The runner (gpu_runner/) only states facts: it started attempt N of a task, it reached a step, it produced these
stored pictures, it failed. Each function here loads the task, asks the Task aggregate whether the fact still
applies (command/tasks.py holds every rule) and records the consequences in ONE atomic write. So a report that
comes late (the task was canceled), twice (a redelivered work item) or out of order changes nothing, and a
success always comes with exactly one set of images: the images are created in the same write as TaskSucceeded,
and a second success report finds the task finished and writes nothing. Each returns the stream sequence written,
0 when the report was ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from command.app import CommandApp, retry_on_conflict
from command.images import Image
from command.tags import Tag
from command.tasks import Task, user_tasks
from command.training_follow import followers, model_of
from events.ids import aggregate_uuid, new_id
from events.images import ImageUploaded
from infra.errors import NotFound

RETRY_REASON = "retrying after a failed attempt: "


@dataclass(frozen=True)
class ProducedImage:
    """One stored picture of a run, as the runner stored it (PNG, thumbnail and descriptor made as for uploads)."""

    blob_key: str
    thumbnail_key: str | None
    content_type: str
    width: int
    height: int
    seed: int
    descriptor: list[float] | None


def _task(app: CommandApp, task_id: int) -> Task | None:
    try:
        return app.load(Task, "task", task_id)
    except NotFound:  # deleted meanwhile: nothing to report to
        return None


def record_started(app: CommandApp, task_id: int, server_id: int | None, server_name: str, attempt: int) -> int:
    def attempt_() -> int:
        task = _task(app, task_id)
        if task is None or not task.start(server_id, server_name, attempt):
            return 0
        return app.store(task, *followers(app, task))

    return retry_on_conflict(attempt_)


def record_progress(app: CommandApp, task_id: int, progress: int) -> int:
    """Only milestones are recorded (every 25 %); finer progress never reaches the log."""
    def attempt_() -> int:
        task = _task(app, task_id)
        if task is None or not task.reach(progress):
            return 0
        return app.store(task, *followers(app, task))

    return retry_on_conflict(attempt_)


def record_failed(app: CommandApp, task_id: int, reason: str, final: bool) -> int:
    """`final`: the task ends in error with the reason; otherwise it waits for its next attempt (the work item is
    delivered again), and says why."""
    def attempt_() -> int:
        task = _task(app, task_id)
        if task is None:
            return 0
        if not final:
            return app.store(task, *followers(app, task)) if task.queue(RETRY_REASON + reason[:500]) else 0
        if not task.fail(reason[:2000]):
            return 0
        mine = user_tasks(app, task.user_id)
        mine.finish(task.number)
        return app.store(task, mine, *followers(app, task))

    return retry_on_conflict(attempt_)


def _live_tags(app: CommandApp, tag_ids: list[int]) -> list[int]:
    live = []
    for number in tag_ids:
        try:
            app.load(Tag, "tag", number)
        except NotFound:  # deleted since the request: the images do not carry it
            continue
        live.append(number)
    return live


def record_produced(app: CommandApp, task_id: int, produced: list[ProducedImage], prompt_handling: str) -> int:
    """The task succeeds and its images are created, all in one write; nothing when the task no longer takes it."""
    def attempt_() -> int:
        task = _task(app, task_id)
        if task is None or task.status != "running" or not produced:
            return 0
        data = task.data
        tag_ids = _live_tags(app, task.tag_ids)
        images = []
        for n, made in enumerate(produced):
            name = task.name if len(produced) == 1 else f"{task.name} #{n + 1}"
            images.append(Image._create(
                ImageUploaded, id=aggregate_uuid("image", new_id()), user_id=task.user_id, name=name,
                prompt=data["prompt"], negative_prompt=data["negative_prompt"], width=made.width,
                height=made.height, num_inference_steps=data["num_inference_steps"],
                guidance_scale=data["guidance_scale"], scheduler=data["scheduler"], seed=made.seed,
                from_image=None if data.get("from_image") is None else str(data["from_image"]),
                model_id=data.get("model_id"), loras=list(data.get("loras", [])), blob_key=made.blob_key,
                thumbnail_key=made.thumbnail_key, content_type=made.content_type, public=task.public,
                tag_ids=tag_ids, task_id=task.number, descriptor=made.descriptor))
        if not task.succeed([image.number for image in images], prompt_handling):
            return 0
        mine = user_tasks(app, task.user_id)
        mine.finish(task.number)
        return app.store(task, mine, *images)

    return retry_on_conflict(attempt_)


def record_trained(app: CommandApp, task_id: int, artefact_key: str, artefact_bytes: int,
                   cover: ProducedImage | None) -> int:
    """A train task succeeds with `model_path`, its model stores the artefact (success: a retrain's new file
    replaces the old only now) and the cover becomes a gallery image of the model's owner with the model's
    visibility, chosen as the model's cover: all in one write. Nothing when the task or its model no longer takes
    it (canceled, finished, a redelivery's second report)."""
    def attempt_() -> int:
        task = _task(app, task_id)
        if task is None or task.type != "train" or task.status != "running":
            return 0
        model = model_of(app, task)
        if model is None or model.training_task != task.number or model.status not in ("waiting", "running"):
            return 0
        images = []
        ckp = model.type == "ckp"  # the cover was made on the model itself, else with it applied to the base
        if cover is not None:
            images.append(Image._create(
                ImageUploaded, id=aggregate_uuid("image", new_id()), user_id=model.user_id, name=model.name,
                prompt=model.trigger_words, negative_prompt="", width=cover.width, height=cover.height,
                num_inference_steps=None, guidance_scale=None, scheduler=None, seed=cover.seed, from_image=None,
                model_id=model.number if ckp else None,
                loras=[] if ckp else [{"model_id": model.number, "weight": 1.0}], blob_key=cover.blob_key,
                thumbnail_key=cover.thumbnail_key, content_type=cover.content_type, public=model.public,
                tag_ids=[], task_id=task.number, descriptor=cover.descriptor))
        if not task.succeed([image.number for image in images], None, model_path=artefact_key):
            return 0
        model.store_artefact(artefact_key, artefact_bytes, "trained")
        if images:
            model.choose_cover(images[0].number)
        mine = user_tasks(app, task.user_id)
        mine.finish(task.number)
        return app.store(task, mine, model, *images)

    return retry_on_conflict(attempt_)
