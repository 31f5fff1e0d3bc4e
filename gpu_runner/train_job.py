"""A training task on the runner (docs/training.md): dataset -> train -> artefact and cover -> RunTrained -> ack.

- **Dataset** (gpu_runner/train_dataset.py): read, fetched and cut to the training resolution before any
  training; an item that cannot be used fails the task, naming it.
- **Train** in a thread (gpu_runner/training `train`), with the runner's hooks: every step goes out on the task's
  and the model's progress subjects (events/progress.py, `detail` = loss and learning rate), with a sample image
  as `preview` now and then (made with the pipeline from the artefact as it stands; `samples` per run,
  AIDRAW_RUNNER_TRAIN_SAMPLES); 25 % milestones are `RunProgressed` reports. Between steps the runner serves the
  generations waiting for it (`serve_waiting`), so a long training never stops inference. `should_stop` is true
  once the log says the task is over (polled as for inference) or the runner is stopping.
- **Checkpoints** go to the blob store (gpu_runner/train_checkpoints.py): a runner killed mid-training leaves the
  last one, and the redelivered item resumes from it. Meanwhile the work item gets `in_progress()` every third of
  `ack_wait`, so a long run keeps its lease.
- **Result**: the safetensors artefact stored, a cover made with it and the trigger words (stored like a
  generation's picture, gpu_runner/work_items.py `store_result`; None if it cannot be made), `RunTrained`, ack,
  and the checkpoint discarded.
- **Failures**: a bad dataset, bad parameters or a model type without a trainer fail the task for good with the
  reason; anything else may pass and is tried again until the last delivery. A canceled task is acked with
  nothing stored (its cancel is in the log); a stopping runner writes a checkpoint and gives the item back (nak).
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.kv import KeyValue
from PIL import Image

from events.progress import Progress, progress_subject
from events.runs import RunProgressed, RunTrained
from gpu_runner.pipeline import AdapterRef, GenerationRequest, GenerationResult, PipelinePool
from gpu_runner.reports import ReportLog
from gpu_runner.train_checkpoints import BlobCheckpoints
from gpu_runner.train_dataset import DatasetProblem, training_images, trigger_words
from gpu_runner.training import Hooks, InvalidTraining, Stopped, Trained, TrainingFailed, TrainSpec, train
from gpu_runner.training import Progress as StepDone
from gpu_runner.training.spec import validate_training
from gpu_runner.work_items import Base, store_result
from infra.storage import BlobStore
from infra.urls import AllowList

log = logging.getLogger("aidraw.runner")
MILESTONE = 25
SAMPLE_SIDE, SAMPLE_STEPS, PREVIEW_SIDE = 256, 12, 128
COVER_SIDE, COVER_STEPS = 512, 20
ARTEFACT_TYPE = "application/x-safetensors"


@dataclass(frozen=True)
class Lent:
    """What the runner lends a training run."""

    nc: Client
    prefix: str
    device: str
    blobs: BlobStore
    pool: PipelinePool
    reports: ReportLog
    checkpoints: KeyValue
    allowed: AllowList
    ack_wait_s: float
    max_deliver: int
    poll_s: float
    samples: int  # sample images per run, at most (0: none)
    ended: Callable[[int], Awaitable[bool]]  # the log says the task is over
    serve_waiting: Callable[[], Coroutine[Any, Any, None]]  # run the generations waiting for this runner
    stopping: asyncio.Event


class TrainJob:
    def __init__(self, lent: Lent, msg: Msg, item: dict[str, Any], attempt: int, base: Base,
                 fail: Callable[[str, bool], Awaitable[None]]) -> None:
        """`fail(reason, final)` reports RunFailed and gives the item back or drops it (the worker's rule)."""
        self.lent, self.msg, self.attempt, self.base, self.fail = lent, msg, attempt, base, fail
        self.data: dict[str, Any] = item["data"]
        self.task_id, self.model_id = int(item["task_id"]), int(self.data["model_id"])
        self.words = trigger_words(self.data.get("trigger_words"))
        self.loop = asyncio.get_running_loop()
        self.canceled = False
        self.tick = 0
        self.milestone = -1  # below the first step's: a resumed run does not repeat the milestones it passed
        self.preview: bytes | None = None
        self.spec = TrainSpec(self.data.get("model_type"), str(base.path), self.words,  # type: ignore[arg-type]
                              dict(self.data.get("training") or {}))
        self.pending: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """To the end: reported and acked, or given back to come again (the runner is stopping)."""
        store = BlobCheckpoints(self.lent.blobs, self.lent.checkpoints, self.loop, self.task_id)
        last = self.attempt >= self.lent.max_deliver
        watch = asyncio.ensure_future(self._watch())
        try:
            trained = await self._train(store)
        except Stopped:
            if self.canceled:  # the cancel is in the log already: nothing to store, nothing to say
                await self.msg.ack_sync()
                await store.discard()
            else:  # stopping: the checkpoint is written, the next runner resumes from it
                await self.msg.nak()
            return
        except InvalidTraining as error:
            return await self._failed(store, f"training parameters: {error}", final=True)
        except TrainingFailed as error:
            return await self._failed(store, str(error), final=True)
        except DatasetProblem as problem:
            return await self._failed(store, problem.reason, final=problem.final or last)
        except Exception as error:  # any failure of the run ends in a report, never a hang
            log.exception("training task %s failed", self.task_id)
            return await self._failed(store, f"the runner failed: {type(error).__name__}: {error}"[:500],
                                      final=last)
        finally:
            watch.cancel()
            await asyncio.gather(*self.pending, return_exceptions=True)
        await self._finish(trained, store)

    async def _failed(self, store: BlobCheckpoints, reason: str, *, final: bool) -> None:
        await self.fail(reason, final)
        if final:
            await store.discard()

    async def _train(self, store: BlobCheckpoints) -> Trained:
        spec = self.spec = replace(self.spec, params=validate_training(self.spec.model_type, self.spec.params))
        images = await asyncio.to_thread(training_images, self.data.get("dataset") or {}, self.lent.blobs,
                                         self.lent.allowed, resolution=spec.int("resolution"), words=self.words)
        hooks = Hooks(on_progress=self._on_progress, between_steps=self._between_steps,
                      should_stop=lambda: self.canceled or self.lent.stopping.is_set())
        # A ckp artefact is a whole checkpoint: far too heavy to write out and load for a preview.
        samples = self.lent.samples if spec.model_type != "ckp" else 0
        every = math.ceil(spec.int("steps") / samples) if samples else 0
        trained = await asyncio.to_thread(train, spec, images, hooks=hooks, store=store, device=self.lent.device,
                                          sample_every=every, on_sample=self._sample)
        if trained.run.resumed_from:
            log.info("training task %s resumed from step %s", self.task_id, trained.run.resumed_from)
        return trained

    async def _finish(self, trained: Trained, store: BlobCheckpoints) -> None:
        key = await asyncio.to_thread(self.lent.blobs.put, trained.artefact, ARTEFACT_TYPE)
        cover = await asyncio.to_thread(self._cover, trained.artefact)
        await self.lent.reports.report(
            RunTrained, task_id=self.task_id, attempt=self.attempt, model_id=self.model_id, artefact_key=key,
            artefact_bytes=len(trained.artefact), loss_before=trained.loss_before, loss_after=trained.loss_after,
            steps=trained.run.steps, cover=cover)
        await self.msg.ack_sync()
        await store.discard()

    # In the training thread.

    def _between_steps(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.lent.serve_waiting(), self.loop).result()
        except Exception:  # serving others must not end this training; the next step tries again
            log.exception("serving waiting generations between training steps failed")

    def _on_progress(self, done: StepDone) -> None:
        preview, self.preview = self.preview, None
        self.loop.call_soon_threadsafe(self._publish, done, preview)

    def _sample(self, _step: int, artefact: bytes) -> None:
        try:
            side = min(self.spec.int("resolution"), SAMPLE_SIDE)
            picture = Image.open(io.BytesIO(self._picture(artefact, side, SAMPLE_STEPS).png)).convert("RGB")
            picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=75)
            self.preview = out.getvalue()
        except Exception:  # a sample is a nicety: training goes on without it
            log.exception("training task %s: the sample image failed", self.task_id)

    def _cover(self, artefact: bytes) -> dict[str, Any] | None:
        try:
            side = min(self.spec.int("resolution"), COVER_SIDE)
            return store_result(self.lent.blobs, self._picture(artefact, side, COVER_STEPS))
        except Exception:
            log.exception("training task %s: the cover picture failed", self.task_id)
            return None

    def _picture(self, artefact: bytes, side: int, steps: int) -> GenerationResult:
        """A picture of the trigger words made with the artefact: applied to the base as an adapter, or, for a
        checkpoint (`ckp`), as the base itself (a single file, configured by the base's diffusers folder)."""
        kind = self.spec.model_type
        with tempfile.TemporaryDirectory(prefix="aidraw-train-") as folder:
            path = Path(folder) / f"model-{self.model_id}.safetensors"
            path.write_bytes(artefact)
            token = self.words[0] if kind == "ti" and self.words else None
            base, config = (path, self.base.path) if kind == "ckp" else (self.base.path, self.base.config)
            adapters: tuple[AdapterRef, ...] = () if kind == "ckp" else (
                AdapterRef(path, kind, token=token),)  # type: ignore[arg-type]
            request = GenerationRequest(
                key=f"{self.task_id}:cover", prompt=", ".join(self.words) or "a picture", negative_prompt="",
                steps=steps, guidance_scale=7.0, scheduler="K_EULER", seed=self.spec.int("seed"),
                width=side, height=side, base=base, base_name=f"model-{self.model_id}" if kind == "ckp" else
                self.base.name, base_config=config, adapters=adapters)
            outcome = self.lent.pool.generate([request], on_step=lambda _report: None,
                                              is_canceled=lambda _key: False)[0]
        if not isinstance(outcome, GenerationResult):
            raise RuntimeError("the picture was not made")
        return outcome

    # On the loop.

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def _publish(self, done: StepDone, preview: bytes | None) -> None:
        self.tick += 1
        detail = {name: value for name, value in (("loss", done.loss), ("learning_rate", done.learning_rate))
                  if math.isfinite(value)}
        for collection, object_id in (("tasks", self.task_id), ("models", self.model_id)):
            message = replace(Progress.of_step(collection, object_id, self.tick, done.step, done.total, preview),
                              detail=detail)
            self._spawn(self.lent.nc.publish(progress_subject(self.lent.prefix, collection, object_id),
                                             message.encode()))
        total = max(done.total, 1)
        if self.milestone < 0:  # the first step of this run: what came before was reported by an earlier one
            self.milestone = (done.step - 1) * 100 // total // MILESTONE * MILESTONE
        milestone = done.step * 100 // total // MILESTONE * MILESTONE
        if 0 < milestone < 100 and milestone > self.milestone:
            self.milestone = milestone
            self._spawn(self.lent.reports.report(RunProgressed, task_id=self.task_id, attempt=self.attempt,
                                                 progress=milestone))

    async def _watch(self) -> None:
        """Keep the item's lease while training, and learn of a cancel from the log."""
        every = self.lent.ack_wait_s / 3
        last = time.monotonic()
        while True:
            await asyncio.sleep(min(self.lent.poll_s, every))
            try:
                if time.monotonic() - last >= every:
                    last = time.monotonic()
                    await self.msg.in_progress()
                if not self.canceled and await self.lent.ended(self.task_id):
                    self.canceled = True
            except Exception:  # NATS away for a moment: the next round tries again
                log.warning("training task %s: lease or cancel check failed", self.task_id, exc_info=True)
