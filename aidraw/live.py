"""Wiring of the live feed (query/live/): its hub subscribes once per API process on the API's own NATS client
(aidraw/bootstrap.py), the ticket bucket, the routes, and the feed's gauges on /metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from prometheus_client import Gauge

from aidraw.ops import REGISTRY
from infra.settings import Settings
from query.live import routes
from query.live.hub import Hub
from query.live.tickets import Tickets

_feeds: list[routes.LiveFeed] = []  # the running feed(s) of this process (one per app)

SUBSCRIPTIONS = Gauge("aidraw_live_nats_subscriptions", "NATS subscriptions of this process's live feed",
                      registry=REGISTRY)
SOCKETS = Gauge("aidraw_live_sockets", "WebSockets open on this process", registry=REGISTRY)
SUBSCRIPTIONS.set_function(lambda: sum(feed.hub.subscriptions for feed in _feeds))
SOCKETS.set_function(lambda: sum(feed.hub.sockets for feed in _feeds))


def install(app: FastAPI, dependencies: Sequence[Any]) -> None:
    app.include_router(routes.router, dependencies=list(dependencies))
    routes.install(app)


async def start(settings: Settings, client: NatsClient) -> routes.LiveFeed:
    hub = Hub(settings.subject_prefix, settings.live_max_sockets_per_user)
    await hub.start(client)
    feed = routes.LiveFeed(hub, await Tickets.open(client.jetstream(), settings.stream_name), settings.live_queue)
    _feeds.append(feed)
    return feed


async def stop(feed: routes.LiveFeed) -> None:
    _feeds.remove(feed)
    await feed.hub.stop()
