"""One bootstrap: the API process's services, built and opened in one place, closed in reverse order.

`Services` is the one typed container of everything a route uses. Each side reads it through the Protocol it
declares for its own part (infra/services.py explains how), and the assignments at the end of `bootstrap` make
mypy check the container against every one of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import nats
from fastapi import Depends, Request
from nats.aio.client import Client as NatsClient
from psycopg_pool import AsyncConnectionPool
from starlette.concurrency import run_in_threadpool

from aidraw.roles import PROJECTORS, search_projectors
from aidraw.search import image_search
from command.app import CommandApp
from command.routes.deps import CommandServices
from command.sessions import SessionExtender
from events.nats_urls import nats_servers
from events.store.protocol import EventStore
from events.views import ViewRecorder, views_prefix, views_stream_name
from infra import passwords
from infra.decode_pool import DecodePool
from infra.keys import PostgresKeyStore
from infra.presence import RunnerPresence
from infra.ratelimit import LoginThrottle
from infra.services import SharedServices, container
from infra.settings import Settings
from infra.storage import BlobStore
from infra.storage.factory import blob_store_from_env
from query.consistency import CallerSequences, ProjectionWatcher
from query.db import make_pool
from query.live.routes import LiveFeed, LiveServices
from query.search.protocol import ImageSearch
from query.services import QueryServices


@dataclass(frozen=True)
class Services:
    settings: Settings
    commands: CommandApp  # the command side's application: aggregates in, events out (its own NATS bridge)
    event_log: EventStore  # the domain stream, read by the auth check, audit and /readyz
    extend_session: SessionExtender
    keys: PostgresKeyStore  # per-user keys (personal data) and server secrets
    login_throttle: LoginThrottle
    blobs: BlobStore  # image files: local (served at /api/blobs) or S3
    pool: AsyncConnectionPool  # PostgreSQL: the read models, and the uploads' blob locks
    watcher: ProjectionWatcher  # projection positions, for read-your-writes and /readyz
    caller_sequences: CallerSequences
    nats: NatsClient  # the API's own async client, on the app's loop: views now, the live feed next
    views: ViewRecorder
    decoders: DecodePool  # image decoding within a memory budget, shared by every upload (infra/decode_pool.py)
    live: LiveFeed  # WebSockets: the hub with its one NATS subscription, the ticket bucket (query/live/)
    image_search: ImageSearch  # the image lists' adapter, picked by AIDRAW_SEARCH (aidraw/search.py)
    presence: RunnerPresence  # the runners alive now, from their heartbeats (infra/presence.py)


@asynccontextmanager
async def bootstrap(settings: Settings, nats_url: str, database_url: str) -> AsyncIterator[Services]:
    """Open every service of an API process (on the running loop, the app's), yield them, close them all."""
    async with contextlib.AsyncExitStack() as stack:
        blobs = blob_store_from_env(settings.data_dir, settings.storage)
        commands = await run_in_threadpool(CommandApp, settings, nats_url)
        stack.push_async_callback(run_in_threadpool, commands.close)
        keys = await run_in_threadpool(PostgresKeyStore(database_url).open)
        stack.push_async_callback(run_in_threadpool, keys.close)
        throttle = LoginThrottle(database_url, settings.login_max_failures,
                                 settings.login_max_failures_per_address, settings.login_failure_window_s)
        await run_in_threadpool(throttle.open)
        stack.push_async_callback(run_in_threadpool, throttle.close)
        await run_in_threadpool(passwords.warm_up)
        pool = make_pool(database_url)
        await pool.open(wait=True, timeout=20)
        stack.push_async_callback(pool.close)
        search = image_search(settings, pool)
        stack.push_async_callback(search.close)
        watcher = ProjectionWatcher(database_url, [p.name for p in [*PROJECTORS, *search_projectors(settings)]])
        await watcher.start()
        stack.push_async_callback(watcher.stop)
        client = await nats.connect(nats_servers(nats_url), name="aidraw_api", max_reconnect_attempts=-1)
        stack.push_async_callback(_close_quietly, client)
        views = ViewRecorder(client.jetstream(), views_stream_name(settings.stream_name),
                             views_prefix(settings.subject_prefix), settings.views_max_age_s)
        views.start()
        stack.push_async_callback(views.close)
        presence = RunnerPresence(settings.runner_ttl_s)
        await presence.start(client.jetstream(), settings.stream_name, settings.stream_replicas)
        stack.push_async_callback(presence.stop)
        from aidraw import server_metrics  # here, as aidraw.live below: it imports aidraw.ops

        server_metrics.follow(presence)
        stack.callback(server_metrics.forget, presence)
        from aidraw import live  # here: aidraw.live's gauges import aidraw.ops, which imports this module

        feed = await live.start(settings, client)  # the live feed's one subscription, on this same client
        stack.push_async_callback(live.stop, feed)
        decoders = DecodePool(settings.decode_memory_bytes, settings.decode_workers, settings.uploads_per_user,
                              settings.decode_wait_s)
        stack.callback(decoders.close)
        services = Services(settings=settings, commands=commands, event_log=commands.event_log,
                            extend_session=SessionExtender(commands), keys=keys, login_throttle=throttle,
                            blobs=blobs, pool=pool, watcher=watcher, caller_sequences=CallerSequences(),
                            nats=client, views=views, decoders=decoders, live=feed,
                            image_search=search, presence=presence)
        # Each side's view of the container: mypy checks that the container provides every part.
        shared: SharedServices = services
        command_side: CommandServices = services
        query_side: QueryServices = services
        live_side: LiveServices = services
        del shared, command_side, query_side, live_side
        yield services


async def _close_quietly(client: NatsClient) -> None:
    with contextlib.suppress(ConnectionError, TimeoutError):  # a client whose server is away
        await client.close()


def app_services(request: Request) -> Services:
    """The container, for the composition root's own routes (aidraw/ops.py)."""
    services: Services = container(request)
    return services


AppServices = Annotated[Services, Depends(app_services)]
