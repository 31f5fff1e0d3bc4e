"""The projectors this deployment runs (the API waits on exactly these for read-your-writes)."""

from __future__ import annotations

from infra.keys import TransactionKeyReader
from projectors.base import Projector
from projectors.postgres.datasets import DatasetsProjector
from projectors.postgres.images import ImagesProjector
from projectors.postgres.models import ModelsProjector
from projectors.postgres.params import ParamsProjector
from projectors.postgres.sessions import SessionsProjector
from projectors.postgres.tags import TagsProjector
from projectors.postgres.tasks import TasksProjector
from projectors.postgres.users import UsersProjector

PROJECTORS: list[Projector] = [
    TagsProjector(),
    UsersProjector(keys=TransactionKeyReader()),
    SessionsProjector(keys=TransactionKeyReader()),
    ParamsProjector(),
    DatasetsProjector(),
    ImagesProjector(),
    ModelsProjector(),
    TasksProjector(),
]


def projector_named(name: str) -> Projector:
    for projector in PROJECTORS:
        if projector.name == name:
            return projector
    raise KeyError(f"No projection named {name!r}; known: {', '.join(p.name for p in PROJECTORS)}.")
