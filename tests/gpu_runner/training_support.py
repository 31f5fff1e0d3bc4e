"""Four small images, a spec on the tiny model, and single-threaded torch (the CPU is shared)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gpu_runner.training import TrainingImage, TrainSpec

RESOLUTION = 32
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def four_images() -> list[TrainingImage]:
    items = []
    for number, colour in enumerate(COLOURS):
        array = np.zeros((RESOLUTION, RESOLUTION, 3), np.uint8)
        array[:] = colour
        array[::4] = 255 - np.array(colour, np.uint8)  # stripes: something for the model to learn
        items.append(TrainingImage(Image.fromarray(array), f"zqx style {number}"))
    return items


def spec(base: Path, model_type: str, **params: float | int | None) -> TrainSpec:
    return TrainSpec(model_type, str(base), ("zqx",), {"resolution": RESOLUTION, "batch_size": 4} | params)  # type: ignore[arg-type]
