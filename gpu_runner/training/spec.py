"""One training run's spec (`TrainSpec`). The parameters' defaults, bounds and `validate_training` live in
infra/training_params.py (torch-free, so the API process checks them too) and are re-exported here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from infra.training_params import (
    MODEL_TYPES,
    Bound,
    InvalidTraining,
    ModelType,
    bounds,
    defaults,
    validate_training,
)

__all__ = ["MODEL_TYPES", "Bound", "InvalidTraining", "ModelType", "TrainSpec", "bounds", "defaults",
           "validate_training"]


@dataclass(frozen=True)
class TrainSpec:
    """One training run, complete: the same spec (and dataset) gives the same artefact and the same checkpoints."""

    model_type: ModelType
    base: str  # a local diffusers folder
    trigger_words: tuple[str, ...]
    params: Mapping[str, float | int | None] = field(default_factory=dict)

    def get(self, name: str) -> float:
        value = self.params[name]
        if value is None:
            raise KeyError(name)
        return float(value)

    def int(self, name: str) -> int:
        return int(self.get(name))

    def optional(self, name: str) -> float | None:
        value = self.params.get(name)
        return None if value is None else float(value)
