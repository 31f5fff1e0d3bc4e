"""Training as a library: a spec and a materialised dataset in, an artefact's bytes out.

`train(spec, items, hooks=..., store=...)` picks the trainer for the spec's model type, resumes from the last
checkpoint in `store` if one is there, reports progress and yields between steps through `hooks`, and returns the
artefact (safetensors bytes) with the loss at fixed noise before and after (for tests and the owner).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from gpu_runner.training.core import (
    CheckpointStore,
    Hooks,
    MemoryCheckpoints,
    Progress,
    RunResult,
    Stopped,
    checkpoint_key,
    digest_items,
    run,
)
from gpu_runner.training.sd import SDTrainee, TrainingFailed, TrainingImage, load_base
from gpu_runner.training.spec import InvalidTraining, TrainSpec, validate_training


@dataclass(frozen=True)
class Trained:
    artefact: bytes
    loss_before: float
    loss_after: float
    run: RunResult


def _trainee(spec: TrainSpec, items: Sequence[TrainingImage], device: str) -> SDTrainee:
    parts = load_base(spec.base)
    if spec.model_type == "lora":
        from gpu_runner.training.lora import LoraTrainee

        return LoraTrainee(spec, parts, items, device)
    if spec.model_type == "ti":
        from gpu_runner.training.ti import TiTrainee

        return TiTrainee(spec, parts, items, device)
    if spec.model_type == "hyper":
        from gpu_runner.training.hyper import HyperTrainee

        return HyperTrainee(spec, parts, items, device)
    if spec.model_type == "ckp":
        from gpu_runner.training.ckp import CkpTrainee

        return CkpTrainee(spec, parts, items, device)
    raise TrainingFailed(f"training {spec.model_type} models is not available on this runner")


def train(spec: TrainSpec, items: Sequence[TrainingImage], *, hooks: Hooks | None = None,
          store: CheckpointStore | None = None, device: str = "cpu", sample_every: int = 0,
          on_sample: Callable[[int, bytes], None] | None = None) -> Trained:
    """`on_sample(step, artefact)`: every `sample_every` steps (not after the last), the artefact as it stands,
    called before that step's `on_progress` (the runner makes its sample image from it)."""
    spec = TrainSpec(spec.model_type, spec.base, spec.trigger_words,
                     validate_training(spec.model_type, spec.params))
    trainee = _trainee(spec, items, device)
    before = trainee.eval_loss()
    key = checkpoint_key(spec, digest_items([item.fingerprint() for item in items]))
    hooks = hooks or Hooks()
    if on_sample is not None and sample_every > 0:
        sample, report = on_sample, hooks.on_progress

        def on_progress(progress: Progress) -> None:
            if progress.step % sample_every == 0 and progress.step < progress.total:
                sample(progress.step, trainee.artefact())  # type: ignore[attr-defined]
            report(progress)

        hooks = replace(hooks, on_progress=on_progress)
    result = run(spec, trainee, key=key, store=store, hooks=hooks)  # type: ignore[arg-type]
    return Trained(trainee.artefact(), before, trainee.eval_loss(), result)  # type: ignore[attr-defined]


__all__ = [
    "CheckpointStore", "Hooks", "InvalidTraining", "MemoryCheckpoints", "Progress", "Stopped", "TrainSpec",
    "Trained", "TrainingFailed", "TrainingImage", "train", "validate_training",
]
