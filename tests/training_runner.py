"""A real `aidraw runner` process driven without the command side: a task is a TaskCreated in the log plus its
work item on the work stream (as the scheduler releases it); what the runner did is read back from the log (its
reports), the progress subjects and the blob store."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nats
import numpy as np
from nats.js.api import StreamConfig
from PIL import Image

from events.codec import decode_message, mapper
from events.ids import aggregate_uuid
from events.store.aio import AsyncJetStreamStore
from events.store.stream import stream_config
from events.tasks import TaskCanceled, TaskCreated, capability_of
from events.work import ensure_work_stream, work_item, work_stream_name, work_subject
from infra.storage.local import LocalBlobStore

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
SMALL_GENERATION = {"prompt": "a red boat", "negative_prompt": "", "num_inference_steps": 4, "guidance_scale": 7.0,
                    "scheduler": "K_EULER", "seed": 1, "width": 32, "height": 32, "batch_size": 1}


def striped_png(number: int, side: int = 40) -> bytes:
    array = np.zeros((side, side, 3), np.uint8)
    array[:] = COLOURS[number % len(COLOURS)]
    array[::4] = 255 - np.array(COLOURS[number % len(COLOURS)], np.uint8)
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


def training(model_id: int, dataset: dict[str, Any], model_type: str = "lora", **params: Any) -> dict[str, Any]:
    """A train task's data as the command side makes it (docs/training.md, the contract)."""
    return {"kind": "train", "model_id": model_id, "model_type": model_type, "base_model": "SD1.5",
            "base_capability": "default", "trigger_words": "zqx",
            "training": {"steps": 8, "resolution": 32, "batch_size": 4, "learning_rate": 1e-3,
                         "checkpoint_every": 4} | params,
            "dataset": {"images": [], "oss": [], "repeats": 1} | dataset, "public": False}


@contextmanager
def file_server(files: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    """An HTTP server on loopback serving `files` (path -> content type, body); 404 otherwise."""
    class Files(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            content_type, body = files.get(self.path, ("text/plain", b"not here"))
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class RunnerRig:
    """A stream and a data folder of its own, and `aidraw runner` processes on them (started and killed)."""

    nats_url: str
    stream: str
    data_dir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    next_task: int = 1000

    @property
    def prefix(self) -> str:
        return self.stream.lower()

    @property
    def blobs(self) -> LocalBlobStore:
        return LocalBlobStore(self.data_dir / "blobs")

    def setup(self) -> RunnerRig:
        async def streams() -> None:
            nc = await nats.connect(self.nats_url)
            js = nc.jetstream()
            config: StreamConfig = stream_config(self.stream, self.prefix)
            await js.add_stream(config)
            await ensure_work_stream(js, self.stream, self.prefix)
            await nc.close()

        self.data_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(streams())
        return self

    def start(self) -> RunnerRig:
        env = dict(os.environ, AIDRAW_NATS_URL=self.nats_url, AIDRAW_STREAM=self.stream,
                   AIDRAW_SUBJECT_PREFIX=self.prefix, AIDRAW_DATA_DIR=str(self.data_dir),
                   AIDRAW_LOG_LEVEL="INFO", AIDRAW_LOG_JSON="false", AIDRAW_URL_ALLOWED_HOSTS="127.0.0.1",
                   AIDRAW_RUNNER_NAME="train-rig", AIDRAW_RUNNER_TRAIN_SAMPLES="2",
                   # One torch thread: on a shared, busy test machine OpenMP's spinning threads slow a step tenfold.
                   OMP_NUM_THREADS="1")
        env.update(self.env_extra)
        with open(self.data_dir / "runner.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "aidraw.cli", "runner"], env=env, stdout=log,
                                         stderr=subprocess.STDOUT)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.kill() if kill else self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # aidraw/stackdump.py: every thread's stack into the log
            time.sleep(2)
            self.proc.kill()
            raise AssertionError(f"the runner did not stop within 30 s of SIGTERM; its log:\n{self.log()}") from None

    def log(self) -> str:
        path = self.data_dir / "runner.log"
        return path.read_text(errors="replace")[-20000:] if path.exists() else ""

    def submit(self, data: dict[str, Any]) -> int:
        """TaskCreated in the log and the work item on its capability's subject; the task's id."""
        self.next_task += 1
        task_id = self.next_task

        async def publish() -> None:
            nc = await nats.connect(self.nats_url)
            await append(nc, self, TaskCreated, task_id, 1, originator_topic="command.tasks:Task", user_id=7,
                         type="train" if data.get("kind") == "train" else "inference", name="", data=data,
                         tag_ids=[], public=False)
            capability = capability_of(data)
            await nc.jetstream().publish(work_subject(self.prefix, capability, task_id),
                                         work_item(task_id, capability, 7, data),
                                         headers={"Nats-Msg-Id": f"task-{task_id}"})
            await nc.close()

        asyncio.run(publish())
        return task_id

    def cancel(self, task_id: int) -> None:
        async def cancel() -> None:
            nc = await nats.connect(self.nats_url)
            await append(nc, self, TaskCanceled, task_id, 2, by_user_id=7, progress=0)
            await nc.close()

        asyncio.run(cancel())

    def reports(self, task_id: int | None = None) -> list[Any]:
        """The runner's reports in the log (about `task_id` only, when given), in log order."""
        async def read() -> list[Any]:
            nc = await nats.connect(self.nats_url)
            js = nc.jetstream()
            last = (await js.stream_info(self.stream)).state.last_seq
            found = []
            for seq in range(1, last + 1):
                msg = await js.get_msg(self.stream, seq)
                event = decode_message(msg.headers, msg.data or b"")
                if event is not None and (task_id is None or getattr(event, "task_id", None) == task_id):
                    found.append(event)
            await nc.close()
            return found

        return asyncio.run(read())

    def work_left(self) -> int:
        """Work items in the work stream (acked ones are gone: WorkQueue retention)."""
        async def count() -> int:
            nc = await nats.connect(self.nats_url)
            info = await nc.jetstream().stream_info(work_stream_name(self.stream))
            await nc.close()
            return int(info.state.messages)

        return asyncio.run(count())

    def wait_for(self, task_id: int, kinds: tuple[str, ...], timeout: float = 240) -> list[Any]:
        """The task's reports once one of `kinds` (class names) is among them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.reports(task_id)
            if any(type(e).__name__ in kinds for e in found):
                return found
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("the runner exited:\n" + self.log())
            time.sleep(0.5)
        raise AssertionError(f"no {kinds} for task {task_id}: {self.reports(task_id)}\n{self.log()}")


async def append(nc: Any, rig: RunnerRig, kind: type[Any], task_id: int, version: int, **fields: Any) -> None:
    """One event of task `task_id` in the rig's log, as the command side would append it."""
    event = kind(originator_id=aggregate_uuid("task", task_id), originator_version=version,
                 timestamp=dt.datetime.now(dt.UTC), **fields)
    await AsyncJetStreamStore(nc, rig.stream, rig.prefix).insert_events([mapper().to_stored_event(event)])


class Listener:
    """Progress messages of the rig's prefix, collected in a thread of their own (core NATS, at most once)."""

    def __init__(self, rig: RunnerRig) -> None:
        self.rig = rig
        self.seen: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        nc = await nats.connect(self.rig.nats_url)

        async def note(msg: Any) -> None:
            self.seen.append(json.loads(msg.data))

        await nc.subscribe(f"{self.rig.prefix}_changed.*.*", cb=note)
        await nc.flush()
        self._ready.set()
        await self._stop.wait()
        await nc.close()

    def __enter__(self) -> Listener:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def of(self, collection: str, object_id: int) -> list[dict[str, Any]]:
        return [m for m in list(self.seen) if m["collection"] == collection and m["id"] == object_id]

    def until(self, check: Callable[[], bool], timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"not seen in time; last: {self.seen[-3:]}\n{self.rig.log()}")
            time.sleep(0.05)
