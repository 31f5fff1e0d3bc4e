"""Training as a library: a spec and a materialised dataset in, an artefact's bytes out.

`train(spec, items, hooks=..., store=...)` picks the trainer for the spec's model type, resumes from the last
checkpoint in `store` if one is there, reports progress and yields between steps through `hooks`, and returns the
artefact (safetensors bytes) with the loss at fixed noise before and after (for tests and the owner).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Sequence
from dataclasses import dataclass

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
          store: CheckpointStore | None = None, device: str = "cpu") -> Trained:
    spec = TrainSpec(spec.model_type, spec.base, spec.trigger_words,
                     validate_training(spec.model_type, spec.params))
    trainee = _trainee(spec, items, device)
    before = trainee.eval_loss()
    key = checkpoint_key(spec, digest_items([item.fingerprint() for item in items]))
    result = run(spec, trainee, key=key, store=store, hooks=hooks or Hooks())  # type: ignore[arg-type]
    return Trained(trainee.artefact(), before, trainee.eval_loss(), result)  # type: ignore[attr-defined]


__all__ = [
    "CheckpointStore", "Hooks", "InvalidTraining", "MemoryCheckpoints", "Progress", "Stopped", "TrainSpec",
    "Trained", "TrainingFailed", "TrainingImage", "train", "validate_training",
]
