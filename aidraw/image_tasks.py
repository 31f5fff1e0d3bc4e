"""Image work that runs in the projector process beside the projectors (`aidraw projector` with no names):

- the views read model: its projection of the views stream (events/views.py), and the one that removes a deleted
  image's views (domain stream);
- the blob reaper, a process manager: its queue projection on the domain stream, the worker that deletes unused
  blobs, and the periodic sweep for blobs no event names (projectors/blob_reaper.py).

Neither is in aidraw.roles.PROJECTORS: the API's read-your-writes waits only on domain-stream projections
that build what queries read, and a view's position is a sequence of another stream.
"""

from __future__ import annotations

import asyncio
import logging

import nats

from events.nats_urls import nats_servers
from events.store.bridge import log_connection_errors
from events.views import ensure_views_stream, views_prefix, views_stream_name
from infra.settings import Settings
from infra.storage.factory import blob_store_from_env
from projectors.blob_reaper import BlobReaper
from projectors.loop import ProjectionLoop, Target
from projectors.postgres.views import ViewsOfDeletedImages, ViewsProjector
from projectors.process import run_process_manager


async def run_image_tasks(settings: Settings, nats_url: str, database_url: str, stop: asyncio.Event) -> None:
    nc = await nats.connect(nats_servers(nats_url), max_reconnect_attempts=-1, name="aidraw_image_tasks",
                            error_cb=log_connection_errors(logging.getLogger("aidraw.image_tasks"), "image tasks"))
    try:
        js = nc.jetstream()
        views = views_stream_name(settings.stream_name)
        await ensure_views_stream(js, views, views_prefix(settings.subject_prefix), settings.views_max_age_s)

        async def log_end() -> int:
            info = await js.stream_info(settings.stream_name)
            return int(info.state.last_seq or 0)

        domain = Target(nats_url, settings.stream_name, database_url)
        reaper = BlobReaper(blob_store_from_env(settings.data_dir, settings.storage), database_url, log_end,
                            orphan_sweep_s=settings.blob_sweep_interval_s, orphan_age_s=settings.blob_orphan_age_s)
        await asyncio.gather(
            ProjectionLoop(ViewsProjector(), Target(nats_url, views, database_url),
                           batch_size=settings.projector_batch).run(stop),
            ProjectionLoop(ViewsOfDeletedImages(), domain, batch_size=settings.projector_batch).run(stop),
            run_process_manager(reaper, domain, stop, batch_size=settings.projector_batch),
        )
    finally:
        await nc.close()
