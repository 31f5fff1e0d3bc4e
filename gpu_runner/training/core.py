"""The loop every trainer shares: steps, progress, yielding, checkpoints and exact resume.

A trainer supplies a `Trainee` (its trainable tensors, the loss of one step, its state); the loop runs AdamW with
gradient clipping and a linear-warmup-then-constant learning rate. Randomness is drawn from a generator seeded by
(spec seed, step), so a step's noise, timesteps and batch depend on nothing but the step number: a run resumed from
a checkpoint (trainable tensors, optimizer and scheduler state, step) continues exactly as if never stopped.
Checkpoints are bytes under a key derived from the spec and dataset, written through a `CheckpointStore`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from gpu_runner.training.spec import TrainSpec


class CheckpointStore(Protocol):
    """Bytes in, bytes out, by key. The blob store is content-addressed, so the runner keeps key -> blob key."""

    def load(self, key: str) -> bytes | None: ...

    def save(self, key: str, data: bytes) -> None: ...


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    def load(self, key: str) -> bytes | None:
        return self.saved.get(key)

    def save(self, key: str, data: bytes) -> None:
        self.saved[key] = data


@dataclass(frozen=True)
class Progress:
    step: int  # steps done
    total: int
    loss: float
    learning_rate: float


class Stopped(Exception):
    """`should_stop` said so; a checkpoint of the last finished step has been written."""

    def __init__(self, step: int) -> None:
        super().__init__(f"training stopped after step {step}")
        self.step = step


@dataclass
class Hooks:
    on_progress: Callable[[Progress], None] = lambda _p: None
    between_steps: Callable[[], None] = lambda: None  # the runner serves inference here
    should_stop: Callable[[], bool] = lambda: False


class Trainee(Protocol):
    def parameters(self) -> list[torch.nn.Parameter]: ...

    def loss(self, step: int, generator: torch.Generator) -> torch.Tensor: ...

    def after_step(self) -> None: ...

    def state(self) -> dict[str, torch.Tensor]: ...

    def load_state(self, state: dict[str, torch.Tensor]) -> None: ...


@dataclass
class RunResult:
    steps: int
    resumed_from: int
    losses: list[float] = field(default_factory=list)


def checkpoint_key(spec: TrainSpec, dataset_digest: str) -> str:
    body = json.dumps([spec.model_type, spec.base, spec.trigger_words, dict(spec.params), dataset_digest],
                      sort_keys=True, default=str)
    return "train-ckpt-" + hashlib.sha256(body.encode()).hexdigest()[:32]


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % 2**63)


def _pack(step: int, trainee: Trainee, optimizer: torch.optim.Optimizer,
          scheduler: torch.optim.lr_scheduler.LRScheduler) -> bytes:
    buffer = io.BytesIO()
    torch.save({"step": step, "trainee": trainee.state(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, buffer)
    return buffer.getvalue()


def run(spec: TrainSpec, trainee: Trainee, *, key: str, store: CheckpointStore | None, hooks: Hooks) -> RunResult:
    total, every = spec.int("steps"), spec.int("checkpoint_every")
    warmup = spec.int("warmup_steps")
    params = trainee.parameters()
    optimizer = torch.optim.AdamW(params, lr=spec.get("learning_rate"), weight_decay=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (warmup + 1)))
    start = 0
    saved = store.load(key) if store is not None else None
    if saved is not None:
        state = torch.load(io.BytesIO(saved), map_location="cpu", weights_only=True)
        trainee.load_state(state["trainee"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["step"])
    result = RunResult(steps=total, resumed_from=start)
    for step in range(start, total):
        if step > start:
            hooks.between_steps()
            if hooks.should_stop():
                if store is not None:
                    store.save(key, _pack(step, trainee, optimizer, scheduler))
                raise Stopped(step)
        optimizer.zero_grad(set_to_none=True)
        loss = trainee.loss(step, step_generator(spec.int("seed"), step))
        loss.backward()  # type: ignore[no-untyped-call]
        if spec.get("max_grad_norm") > 0:
            torch.nn.utils.clip_grad_norm_(params, spec.get("max_grad_norm"))
        learning_rate = float(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
        trainee.after_step()
        result.losses.append(float(loss.detach()))
        hooks.on_progress(Progress(step + 1, total, result.losses[-1], learning_rate))
        if store is not None and (step + 1) % every == 0 and step + 1 < total:
            store.save(key, _pack(step + 1, trainee, optimizer, scheduler))
    return result


def digest_items(items: Sequence[tuple[bytes, str]]) -> str:
    hasher = hashlib.sha256()
    for data, caption in items:
        hasher.update(hashlib.sha256(data).digest() + caption.encode() + b"\0")
    return hasher.hexdigest()
