"""App assembly: the command routes, the query routes and operations on one FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from aidraw import live, ops
from aidraw.bootstrap import Services, bootstrap
from aidraw.image_routes import IMAGE_ROUTERS
from aidraw.observe import Observe
from aidraw.openapi import install_problem_docs
from command.routes import datasets as command_datasets
from command.routes import model_files as command_model_files
from command.routes import models as command_models
from command.routes import params as command_params
from command.routes import servers as command_servers
from command.routes import sessions as command_sessions
from command.routes import tags as command_tags
from command.routes import tasks as command_tasks
from command.routes import users as command_users
from infra.auth import current_actor
from infra.body_limit import BodyLimit
from infra.errors import install_problem_handlers
from infra.services import SERVICES_KEY
from infra.settings import Settings
from query.routes import audit
from query.routes import datasets as query_datasets
from query.routes import model_files as query_model_files
from query.routes import models as query_models
from query.routes import params as query_params
from query.routes import servers as query_servers
from query.routes import sessions as query_sessions
from query.routes import tags as query_tags
from query.routes import tasks as query_tasks
from query.routes import users as query_users

DESCRIPTION = """The server side of an AI drawing service: accounts, images, models, training and generation
tasks, a shared gallery. Writes answer with `X-Event-Sequence`; your own next read waits until it is visible.
Errors are `application/problem+json`."""


def create_app(settings: Settings, nats_url: str, database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Services]]:
        async with bootstrap(settings, nats_url, database_url) as services:
            yield {SERVICES_KEY: services}  # each request's state: infra/services.py

    app = FastAPI(title="aidraw", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    install_problem_handlers(app)
    install_problem_docs(app)
    app.add_middleware(BodyLimit, max_bytes=settings.json_max_bytes)  # inside `observe`: its 413s are measured

    app.add_middleware(Observe)  # outermost of ours (aidraw/observe.py): added last

    # Probes and scrapers answer the same whatever token comes with them (ops.py has its own operator check).
    app.include_router(ops.router)
    # Every other route checks a presented token, even one that does not look at the caller: a bad token is 401,
    # never silently anonymous. Routes that take CurrentActor reuse this result (one check per request).
    checked = [Depends(current_actor)]
    for router in (command_tags.router, query_tags.router, command_users.router, query_users.router,
                   command_sessions.router, query_sessions.router, audit.router):
        app.include_router(router, dependencies=checked)
    # The multipart model upload before the JSON create: both are POST /api/models (command/routes/model_files.py).
    for router in (command_params.router, query_params.router, command_datasets.router, query_datasets.router,
                   command_model_files.router, command_models.router, query_models.router, query_model_files.router,
                   command_tasks.router, query_tasks.router, command_servers.router, query_servers.router):
        app.include_router(router, dependencies=checked)
    for router in IMAGE_ROUTERS:
        app.include_router(router, dependencies=checked)
    live.install(app, checked)  # last: `/api/{collection}/{id}` sockets must not shadow the HTTP routes' paths
    return app

