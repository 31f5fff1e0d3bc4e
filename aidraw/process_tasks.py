"""The process manager's work, run in the projector process beside the projectors (`aidraw projector` with no
names): account deletion (command/account_deletion.py) — its queue projection on the domain stream and the loop
that deletes a deleted account's belongings through the ordinary commands — and the task scheduler
(command/scheduler_loop.py), which releases waiting tasks to the work queue in fair order.
"""

from __future__ import annotations

import asyncio

from aidraw.roles import PROJECTORS
from command.account_deletion import AccountCleaner
from command.app import CommandApp
from command.scheduler_loop import SchedulerLoop
from infra.settings import Settings
from projectors.account_deletions import AccountDeletionQueue
from projectors.runner import ProjectionRunner, Target


async def run_process_manager(settings: Settings, nats_url: str, database_url: str, stop: asyncio.Event) -> None:
    commands = await asyncio.to_thread(CommandApp, settings, nats_url)
    try:
        cleaner = AccountCleaner(commands, database_url, [p.name for p in PROJECTORS])
        await asyncio.gather(
            ProjectionRunner(AccountDeletionQueue(), Target(nats_url, settings.stream_name, database_url),
                             batch_size=settings.projector_batch).run(stop),
            cleaner.run(stop),
            SchedulerLoop(commands, nats_url, settings.scheduler_lookahead).run(stop),
        )
    finally:
        await asyncio.to_thread(commands.close)
