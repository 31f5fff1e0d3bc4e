"""The API's view recorder (events/views.py) on its own async NATS client: views reach their stream, and a NATS
outage loses views without ever making a caller wait (a GET calls `record` inline)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import nats

from aidraw.services import NatsServer
from events.views import ViewRecorder, decode_view, views_prefix, views_stream_name


async def _recorded(js: nats.js.JetStreamContext, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


def test_views_reach_their_stream_and_an_outage_never_makes_a_caller_wait(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats").start()
    stream, prefix = views_stream_name("VR"), views_prefix("vr")

    async def scenario() -> None:
        client = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = client.jetstream()
        recorder = ViewRecorder(js, stream, prefix, 3600.0, queue_size=100, timeout_s=0.3)
        recorder.start()
        for image_id in (1, 2, 3):
            recorder.record(7, image_id)
        await recorder.close()  # drains what is queued
        assert await _recorded(js, stream) == 3 and recorder.dropped == 0
        message = await js.get_msg(stream, 1)
        view = decode_view(message.headers, message.data or b"")
        assert view is not None and (view.user_id, view.image_id) == (7, 1)

        server.kill()
        recorder.start()
        started = time.perf_counter()
        for image_id in range(150):  # more than the queue holds: the rest is dropped, not waited for
            recorder.record(7, image_id)
        assert time.perf_counter() - started < 0.05
        await asyncio.sleep(1.0)  # the publishes time out (0.3 s each batch)
        started = time.perf_counter()
        await recorder.close(drain_s=0.5)
        assert time.perf_counter() - started < 1.5
        assert recorder.dropped >= 50
        with contextlib.suppress(ConnectionError):  # closing a client that lost its server
            await client.close()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
