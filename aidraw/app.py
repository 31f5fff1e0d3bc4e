"""App assembly: the command routes, the query routes and operations on one FastAPI app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from aidraw import ops
from aidraw.image_routes import IMAGE_ROUTERS
from aidraw.openapi import install_problem_docs
from aidraw.roles import PROJECTORS
from command.app import CommandApp
from command.routes import datasets as command_datasets
from command.routes import models as command_models
from command.routes import params as command_params
from command.routes import sessions as command_sessions
from command.routes import tags as command_tags
from command.routes import tasks as command_tasks
from command.routes import users as command_users
from command.sessions import SessionExtender
from infra import passwords
from infra.auth import current_actor
from infra.body_limit import BodyLimit
from infra.decode_pool import DecodePool
from infra.errors import install_problem_handlers
from infra.http import SEQUENCE_HEADER
from infra.keys import PostgresKeyStore
from infra.ratelimit import LoginThrottle
from infra.settings import Settings
from infra.storage.factory import blob_store_from_env
from query.consistency import STALE_HEADER, CallerSequences, ProjectionWatcher, caller_key, token_caller_key
from query.db import make_pool
from query.routes import audit
from query.routes import datasets as query_datasets
from query.routes import models as query_models
from query.routes import params as query_params
from query.routes import sessions as query_sessions
from query.routes import tags as query_tags
from query.routes import tasks as query_tasks
from query.routes import users as query_users

DESCRIPTION = """The server side of an AI drawing service: accounts, images, models, training and generation
tasks, a shared gallery. Writes answer with `X-Event-Sequence`; your own next read waits until it is visible.
Errors are `application/problem+json`."""


def create_app(settings: Settings, nats_url: str, database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.blobs = blob_store_from_env(settings.data_dir)  # image files: local (served at /api/blobs) or S3
        commands = await run_in_threadpool(CommandApp, settings, nats_url)
        app.state.commands = commands
        app.state.event_log = commands.recorder
        app.state.keys = await run_in_threadpool(PostgresKeyStore(database_url).open)
        await run_in_threadpool(app.state.login_throttle.open)
        app.state.extend_session = SessionExtender(commands)
        await run_in_threadpool(passwords.warm_up)
        await app.state.read_pool.open(wait=True, timeout=20)
        await app.state.watcher.start()
        try:
            yield
        finally:
            await app.state.watcher.stop()
            await app.state.read_pool.close()
            await run_in_threadpool(app.state.keys.close)
            await run_in_threadpool(app.state.login_throttle.close)
            await run_in_threadpool(commands.close)
            app.state.decoders.close()

    app = FastAPI(title="aidraw", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.decoders = DecodePool(settings.decode_memory_bytes, settings.decode_workers, settings.uploads_per_user,
                                    settings.decode_wait_s)
    app.state.read_pool = make_pool(database_url)
    app.state.watcher = ProjectionWatcher(database_url, [p.name for p in PROJECTORS])
    app.state.caller_sequences = CallerSequences()
    app.state.login_throttle = LoginThrottle(database_url, settings.login_max_failures,
                                             settings.login_max_failures_per_address, settings.login_failure_window_s)
    install_problem_handlers(app)
    install_problem_docs(app)
    app.add_middleware(BodyLimit, max_bytes=settings.json_max_bytes)  # inside `observe`: its 413s are measured

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        seq = response.headers.get(SEQUENCE_HEADER)
        if seq:
            app.state.caller_sequences.wrote(caller_key(request), int(seq))
            issued = getattr(request.state, "issued_token", None)  # a login: its token's reads wait for it too
            if issued:
                app.state.caller_sequences.wrote(token_caller_key(issued), int(seq))
        if getattr(request.state, "stale", False):
            response.headers[STALE_HEADER] = "stale"
        route = request.scope.get("route")
        ops.REQUEST_LATENCY.labels(request.method, getattr(route, "path", "unmatched"),
                                   str(response.status_code)).observe(time.perf_counter() - started)
        return response

    # Probes and scrapers answer the same whatever token comes with them (ops.py has its own operator check).
    app.include_router(ops.router)
    # Every other route checks a presented token, even one that does not look at the caller: a bad token is 401,
    # never silently anonymous. Routes that take CurrentActor reuse this result (one check per request).
    checked = [Depends(current_actor)]
    for router in (command_tags.router, query_tags.router, command_users.router, query_users.router,
                   command_sessions.router, query_sessions.router, audit.router):
        app.include_router(router, dependencies=checked)
    for router in (command_params.router, query_params.router, command_datasets.router, query_datasets.router,
                   command_models.router, query_models.router, command_tasks.router, query_tasks.router):
        app.include_router(router, dependencies=checked)
    for router in IMAGE_ROUTERS:
        app.include_router(router, dependencies=checked)
    return app

