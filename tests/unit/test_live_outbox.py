"""A socket's send queue: state messages are never lost, progress coalesces (latest wins), previews go first."""

from __future__ import annotations

import asyncio
from typing import Any

from events.progress import Progress
from query.live.outbox import Outbox


def progress(object_id: int, tick: int, preview: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {"step": tick}
    if preview:
        data["preview"] = f"jpeg-{tick}"
    return {"id": object_id, "tick": tick, "data": data}


def drain(outbox: Outbox) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        return [await outbox.get() for _ in range(len(outbox))]

    return asyncio.run(run())


def test_progress_of_one_object_coalesces_to_the_latest_and_keeps_a_waiting_preview_while_short() -> None:
    outbox = Outbox(limit=16)
    outbox.put_progress(1, progress(1, 1, preview=True))
    outbox.put_progress(1, progress(1, 2))
    outbox.put_progress(1, progress(1, 3))
    (only,) = drain(outbox)
    assert only["tick"] == 3 and only["data"]["preview"] == "jpeg-1"
    assert outbox.dropped == 2


def test_a_state_message_is_never_dropped_and_supersedes_its_objects_waiting_progress() -> None:
    outbox = Outbox(limit=2)
    outbox.put_progress(1, progress(1, 1))
    outbox.put_state(1, {"id": 1, "status": "success"})
    for tick in range(2, 50):
        outbox.put_progress(2, progress(2, tick, preview=True))
    sent = drain(outbox)
    assert sent[0] == {"id": 1, "status": "success"}
    assert [m["tick"] for m in sent[1:]] == [49]
    assert not outbox.overflowed


def test_over_the_limit_the_oldest_progress_goes_first_and_a_long_state_backlog_overflows() -> None:
    outbox = Outbox(limit=4)
    for object_id in range(10):
        outbox.put_progress(object_id, progress(object_id, 1))
    assert [m["id"] for m in drain(outbox)] == [6, 7, 8, 9]
    for n in range(17):
        outbox.put_state(n, {"id": n})
    assert outbox.overflowed and len(outbox) == 17


def test_a_runner_step_becomes_a_progress_message_with_a_jpeg_data_url() -> None:
    update = Progress.of_step("tasks", 7, tick=3, step=5, steps=20, jpeg=b"\xff\xd8jpeg")
    assert (update.progress, update.preview) == (25, "data:image/jpeg;base64,/9hqcGVn")
    assert Progress.decode(update.encode()) == update
