"""The process managers (projectors/process.py), run in the projector process beside the projectors
(`aidraw projector` with no names): account deletion (projectors/account_deletion.py) and training requests
(projectors/training.py), with the commands they send handed in from command/, the task scheduler
(command/scheduler_loop.py), which releases waiting tasks to the work queue in fair order, the runners' reports
applied to their tasks (command/run_report_loop.py), and the embedding worker (command/embedder.py; off with
AIDRAW_EMBEDDER=false). The blob reaper runs with the image work (aidraw/image_tasks.py).
"""

from __future__ import annotations

import asyncio
from functools import partial

from command.app import CommandApp
from command.choices import delete_choice
from command.datasets import delete_dataset
from command.embedder import Embedder
from command.images import delete_image
from command.likes import withdraw_all_likes
from command.models import delete_model
from command.params import delete_param
from command.run_report_loop import RunReportLoop
from command.scheduler_loop import SchedulerLoop
from command.tasks import delete_task
from command.training import start_training
from infra.actor import Actor
from infra.embeddings import PromptEncoder, recipe_of
from infra.settings import Settings
from projectors.account_deletion import AccountDeleter, Deleter
from projectors.loop import Target
from projectors.process import run_process_manager
from projectors.training import TrainingStarter


def account_deleters(commands: CommandApp) -> dict[str, Deleter]:
    def withdraw_likes(actor: Actor, user_id: int) -> int:
        assert actor.user_id == user_id
        return withdraw_all_likes(commands, user_id)

    return {"task": partial(delete_task, commands), "model": partial(delete_model, commands),
            "dataset": partial(delete_dataset, commands), "choice": partial(delete_choice, commands),
            "param": partial(delete_param, commands), "image": partial(delete_image, commands),
            "like": withdraw_likes}


def embedder(settings: Settings, commands: CommandApp, database_url: str) -> Embedder:
    """The embedding worker of the configured recipe: CLIP's image part where AIDRAW_CLIP_MODEL_PATH is set."""
    recipe = recipe_of(settings.clip_model_path)
    if not settings.clip_model_path:
        return Embedder(commands, database_url, PromptEncoder(), recipe=recipe)
    from command.embedding_parts import ClipPart
    from infra.clip import ClipImageEncoder
    from infra.storage.factory import blob_store_from_env

    blobs = blob_store_from_env(settings.data_dir, settings.storage)
    part = ClipPart(ClipImageEncoder(settings.clip_model_path), blobs)
    return Embedder(commands, database_url, PromptEncoder(), recipe=recipe, image_part=part)


async def run_process_managers(settings: Settings, nats_url: str, database_url: str, stop: asyncio.Event) -> None:
    commands = await asyncio.to_thread(CommandApp, settings, nats_url)
    try:
        deleter = AccountDeleter(database_url, account_deleters(commands))
        trainer = TrainingStarter(database_url, partial(start_training, commands))
        target = Target(nats_url, settings.stream_name, database_url)
        work = [
            run_process_manager(deleter, target, stop, batch_size=settings.projector_batch),
            run_process_manager(trainer, target, stop, batch_size=settings.projector_batch),
            SchedulerLoop(commands, nats_url, settings.scheduler_lookahead).run(stop),
            RunReportLoop(commands, nats_url).run(stop),
        ]
        if settings.embedder:
            work.append(embedder(settings, commands, database_url).run(stop))
        await asyncio.gather(*work)
    finally:
        await asyncio.to_thread(commands.close)
