"""Step-by-step progress of a running object (a task, a model in training), on short-lived core NATS subjects
`<prefix>_changed.<collection>.<id>`: never in the domain stream, never stored, at most once (DESIGN.md). The
runner publishes; every API process's live feed (query/live/) forwards them to the sockets watching. They share
the `<prefix>_changed.>` space with the projectors' announcements (`<prefix>_changed.<collection>`,
events/changes.py), so one subscription per API process hears both.

`tick` counts the publisher's messages for one run (from 1), so a socket can order progress between two state
changes; `preview` is a small JPEG as a data URL, or None on the messages that carry only a step.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from events.changes import changes_prefix


@dataclass(frozen=True)
class Progress:
    collection: str  # "tasks", "models"
    id: int
    tick: int
    step: int
    steps: int
    progress: int  # 0..100
    preview: str | None = None  # "data:image/jpeg;base64,..." (a few KB)
    detail: dict[str, float] | None = None  # training: {"loss": ..., "learning_rate": ...}

    def encode(self) -> bytes:
        return json.dumps({"collection": self.collection, "id": self.id, "tick": self.tick, "step": self.step,
                           "steps": self.steps, "progress": self.progress, "preview": self.preview,
                           "detail": self.detail}, separators=(",", ":")).encode()

    @classmethod
    def of_step(cls, collection: str, object_id: int, tick: int, step: int, steps: int,
                jpeg: bytes | None = None) -> Progress:
        """What a runner publishes for one denoising step (gpu_runner/pipeline's StepReport: step, total, preview
        JPEG bytes or None)."""
        preview = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode() if jpeg is not None else None
        return cls(collection, object_id, tick, step, steps, round(100 * step / steps) if steps else 0, preview)

    @classmethod
    def decode(cls, data: bytes) -> Progress:
        body = json.loads(data)
        preview, detail = body.get("preview"), body.get("detail")
        return cls(str(body["collection"]), int(body["id"]), int(body["tick"]), int(body["step"]),
                   int(body["steps"]), int(body["progress"]), str(preview) if preview else None,
                   {str(k): float(v) for k, v in detail.items()} if isinstance(detail, dict) else None)


def progress_subject(domain_prefix: str, collection: str, object_id: int) -> str:
    return f"{changes_prefix(domain_prefix)}.{collection}.{object_id}"
