"""A runner as the log knows it (kind `server`, events/runs.py): what it serves and the task it runs now.

The runner writes these events itself (gpu_runner/reports.py); the command side only folds them: the task rules
are applied from the same events by command/run_report_loop.py. The servers list (issue 9, not yet built)
reads from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from command.aggregate import NumberedAggregate
from events.base import EventHandlers
from events.runs import RunFailed, RunProduced, RunProgressed, RunStarted, RunTrained


class Server(NumberedAggregate):
    def __init__(self, name: str, device: str, capabilities: list[str], software_version: str) -> None:
        self.name, self.device, self.capabilities = name, device, capabilities
        self.software_version = software_version
        self.task_id: int | None = None
        self.last_report_at: datetime | None = None

    def _started(self, event: RunStarted) -> None:
        self.task_id, self.last_report_at = event.task_id, event.timestamp

    def _progressed(self, event: RunProgressed) -> None:
        self.last_report_at = event.timestamp

    def _ended(self, event: RunProduced | RunTrained | RunFailed) -> None:
        if self.task_id == event.task_id:
            self.task_id = None
        self.last_report_at = event.timestamp

    WHEN: ClassVar[EventHandlers] = {RunStarted: _started, RunProgressed: _progressed, RunProduced: _ended,
                                     RunTrained: _ended, RunFailed: _ended}
