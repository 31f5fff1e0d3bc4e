"""The projectors this deployment runs (the API waits on exactly these for read-your-writes)."""

from __future__ import annotations

from projectors.base import Projector
from projectors.postgres.datasets import DatasetsProjector
from projectors.postgres.params import ParamsProjector
from projectors.postgres.tags import TagsProjector

PROJECTORS: list[Projector] = [TagsProjector(), ParamsProjector(), DatasetsProjector()]


def projector_named(name: str) -> Projector:
    for projector in PROJECTORS:
        if projector.name == name:
            return projector
    raise KeyError(f"No projection named {name!r}; known: {', '.join(p.name for p in PROJECTORS)}.")
