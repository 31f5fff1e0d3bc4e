"""Training parameters: each model type's defaults, their bounds, and one pure check both sides use.

No torch here: `validate_training(model_type, params)` runs in the API process (command/models.py) to answer 422
before anything is queued, and again in the runner (gpu_runner/training) before any GPU time is spent. Defaults
follow the public recipes (diffusers' train_text_to_image_lora and textual_inversion examples, kohya's sd-scripts,
A1111's training tab); the bounds keep one run within what one runner can do (docs/training.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from events.models import MODEL_TYPES, ModelType

MIN_ITEMS = 4  # usable dataset items a training run needs at least (checked before any GPU time is spent)


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    integer: bool
    optional: bool = False  # None switches the feature off (Min-SNR weighting)


# name -> (default per type, bound); a type that lacks the name does not take it.
_COMMON: dict[str, tuple[float | int | None, Bound]] = {
    "steps": (1000, Bound(1, 20000, True)),
    "batch_size": (1, Bound(1, 32, True)),
    "resolution": (512, Bound(32, 1024, True)),  # a multiple of 8 (the VAE's factor)
    "seed": (0, Bound(0, 2**31 - 1, True)),
    "checkpoint_every": (100, Bound(1, 20000, True)),
    "noise_offset": (0.0, Bound(0.0, 1.0, False)),
    "min_snr_gamma": (None, Bound(0.1, 20.0, False, optional=True)),
    "max_grad_norm": (1.0, Bound(0.0, 100.0, False)),
    "warmup_steps": (0, Bound(0, 5000, True)),
}
_PER_TYPE: dict[ModelType, dict[str, tuple[float | int | None, Bound]]] = {
    "lora": {
        "learning_rate": (1e-4, Bound(1e-7, 1e-2, False)),
        "rank": (4, Bound(1, 128, True)),
        "alpha": (4.0, Bound(0.01, 256.0, False)),
    },
    "ti": {
        "learning_rate": (5e-4, Bound(1e-7, 1e-1, False)),
        "num_vectors": (1, Bound(1, 16, True)),
        "steps": (3000, Bound(1, 20000, True)),
    },
    "hyper": {
        "learning_rate": (5e-6, Bound(1e-8, 1e-2, False)),
    },
    "ckp": {
        "learning_rate": (1e-5, Bound(1e-8, 1e-3, False)),
        "train_text_encoder": (0, Bound(0, 1, True)),
    },
}


class InvalidTraining(ValueError):
    """Parameters outside their bounds: `errors` maps each bad field to a reason (the API's 422 `errors`)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def defaults(model_type: ModelType) -> dict[str, float | int | None]:
    table = _COMMON | _PER_TYPE[model_type]
    return {name: default for name, (default, _bound) in table.items()}


def bounds(model_type: ModelType) -> dict[str, Bound]:
    table = _COMMON | _PER_TYPE[model_type]
    return {name: bound for name, (_default, bound) in table.items()}


def validate_training(model_type: str, params: Mapping[str, object]) -> dict[str, float | int | None]:
    """The defaults with `params` laid over them, or InvalidTraining naming every bad field. Pure."""
    if model_type not in MODEL_TYPES:
        raise InvalidTraining({"type": f"must be one of {', '.join(MODEL_TYPES)}"})
    table = bounds(model_type)  # type: ignore[arg-type]
    merged = defaults(model_type)  # type: ignore[arg-type]
    errors: dict[str, str] = {}
    for name, value in params.items():
        bound = table.get(name)
        if bound is None:
            errors[name] = f"not a training parameter of a {model_type} model (known: {', '.join(sorted(table))})"
            continue
        if value is None and bound.optional:
            merged[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors[name] = "must be a number"
            continue
        if bound.integer and isinstance(value, float) and not value.is_integer():
            errors[name] = "must be a whole number"
            continue
        if not bound.low <= value <= bound.high:
            errors[name] = f"must be between {bound.low:g} and {bound.high:g}"
            continue
        if name == "resolution" and int(value) % 8:
            errors[name] = "must be a multiple of 8"
            continue
        merged[name] = int(value) if bound.integer else float(value)
    if errors:
        raise InvalidTraining(errors)
    return merged
