"""The part of the app's services the query side uses (`QueryServices`, a Protocol the composition root's
container satisfies: infra/services.py), and the typed dependencies its routes take."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from events.views import ViewRecorder
from infra.presence import RunnerPresence
from infra.services import SharedServices, container
from infra.storage import BlobStore
from query.search.protocol import ImageSearch

if TYPE_CHECKING:
    from query.consistency import CallerSequences, ProjectionWatcher


class QueryServices(SharedServices, Protocol):
    @property
    def pool(self) -> AsyncConnectionPool: ...  # the read models

    @property
    def watcher(self) -> ProjectionWatcher: ...

    @property
    def caller_sequences(self) -> CallerSequences: ...

    @property
    def views(self) -> ViewRecorder: ...

    @property
    def image_search(self) -> ImageSearch: ...  # every image list: PostgreSQL or Elasticsearch (docs/search.md)

    @property
    def presence(self) -> RunnerPresence: ...  # the runners alive now (infra/presence.py)


# The dependencies are `async def` although they never wait: FastAPI runs a plain `def` dependency in its thread
# pool, a hand-off to another thread and back for every request (a scheduling delay each on busy cores).
async def query_services(request: Request) -> QueryServices:
    services: QueryServices = container(request)
    return services


QuerySide = Annotated[QueryServices, Depends(query_services)]


async def get_blobs(services: QuerySide) -> BlobStore:
    return services.blobs


async def get_views(services: QuerySide) -> ViewRecorder:
    return services.views


Blobs = Annotated[BlobStore, Depends(get_blobs)]
Views = Annotated[ViewRecorder, Depends(get_views)]


async def get_presence(services: QuerySide) -> RunnerPresence:
    return services.presence


Presence = Annotated[RunnerPresence, Depends(get_presence)]
