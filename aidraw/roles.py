"""The projectors this deployment runs (the API waits on exactly these for read-your-writes)."""

from __future__ import annotations

from infra.keys import TransactionKeyReader
from infra.settings import Settings
from projectors.base import Projector
from projectors.postgres.datasets import DatasetsProjector
from projectors.postgres.images import ImagesProjector
from projectors.postgres.models import ModelsProjector
from projectors.postgres.params import ParamsProjector
from projectors.postgres.servers import ServersProjector
from projectors.postgres.sessions import SessionsProjector
from projectors.postgres.tags import TagsProjector
from projectors.postgres.tasks import TasksProjector
from projectors.postgres.users import UsersProjector
from projectors.sink import ProjectionSink

PROJECTORS: list[Projector] = [
    TagsProjector(),
    UsersProjector(keys=TransactionKeyReader()),
    SessionsProjector(keys=TransactionKeyReader()),
    ParamsProjector(),
    DatasetsProjector(),
    ImagesProjector(),
    ModelsProjector(),
    TasksProjector(),
    ServersProjector(),
]


def search_projectors(settings: Settings) -> list[Projector]:
    """The search index's projector, where the Elasticsearch adapter is configured (docs/search.md)."""
    if settings.search_backend != "elasticsearch":
        return []
    from projectors.search.images import ImageSearchProjector

    return [ImageSearchProjector(settings.elasticsearch_url, settings.subject_prefix)]


def sink_of(projector: Projector, database_url: str) -> ProjectionSink | None:
    """The projection's own sink where it is not PostgreSQL's (the search index); None: the loop's default."""
    from projectors.search.images import ImageSearchProjector

    if isinstance(projector, ImageSearchProjector):
        from projectors.search.sink import ElasticsearchSink

        return ElasticsearchSink(projector, database_url)
    return None


def projector_named(name: str, known: list[Projector] | None = None) -> Projector:
    known = PROJECTORS if known is None else known
    for projector in known:
        if projector.name == name:
            return projector
    raise KeyError(f"No projection named {name!r}; known: {', '.join(p.name for p in known)}.")
