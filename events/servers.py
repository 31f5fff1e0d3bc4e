"""What admins decide about a runner, as events of its `server` aggregate (beside the runner's own reports,
events/runs.py): drain it, let it take work again, forget it once it is gone (docs/runners.md).

The runner reads its own aggregate while it runs (gpu_runner/presence.py), so a drain reaches it through the log
within a few seconds; a deleted server is gone from the servers list, its events stay (audits, rebuilds).
"""

from __future__ import annotations

from events.base import Changed, Deleted


class ServerDrainRequested(Changed):
    """An admin asked the runner to finish what it runs and take no more work."""

    user_id: int


class ServerResumed(Changed):
    """An admin let a draining runner take work again."""

    user_id: int


class ServerDeleted(Deleted):
    """An admin removed an offline runner from the servers list."""

    user_id: int
