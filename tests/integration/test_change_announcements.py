"""After each commit the projection loop announces on core NATS which objects the batch changed
(`<prefix>_changed.<collection>`, events/changes.py): exactly the objects the log changed, in order of the
sequence reached, and never into the domain stream."""

from __future__ import annotations

import asyncio

import nats
from nats.aio.msg import Msg

from aidraw.services import NatsServer, PostgresServer
from command.app import CommandApp
from command.tags import Tag
from events.changes import ObjectsChanged, changes_prefix
from events.ids import aggregate_uuid, new_id
from events.store.bridge import NatsBridge
from events.store.stream import stream_last_sequence
from events.tags import TagCreated
from infra.settings import Settings
from projectors.loop import ProjectionLoop, Target
from projectors.postgres.tags import TagsProjector


def test_each_commit_announces_exactly_the_objects_it_changed(
    nats_server: NatsServer, postgres_server: PostgresServer, stream_name: str
) -> None:
    prefix = stream_name.lower()
    app = CommandApp(Settings(stream_name=stream_name, subject_prefix=prefix), nats_server.url)
    tags = [Tag._create(TagCreated, id=aggregate_uuid("tag", new_id()), name=f"a{n}", user_id=None)
            for n in range(5)]
    app.store(*tags)
    tags[0].rename("renamed")
    tags[1].delete()
    last = app.store(tags[0], tags[1])
    app.close()
    numbers = [int(tag.id.int & (2**64 - 1)) for tag in tags]
    url = postgres_server.create_database(f"announce_{prefix}")

    async def scenario() -> list[tuple[str, ObjectsChanged]]:
        heard: list[tuple[str, ObjectsChanged]] = []
        nc = await nats.connect(nats_server.url)

        async def on_change(msg: Msg) -> None:
            heard.append((msg.subject, ObjectsChanged.decode(msg.data)))

        await nc.subscribe(f"{changes_prefix(prefix)}.>", cb=on_change)
        await nc.flush()
        target = Target(nats_server.url, stream_name, url, announce_prefix=prefix)
        await ProjectionLoop(TagsProjector(), target, batch_size=3).run(asyncio.Event(), until=last)
        await asyncio.sleep(0.3)  # core NATS: let the last announcements arrive
        await nc.close()
        return heard

    heard = asyncio.run(scenario())
    assert heard, "nothing announced"
    assert {subject for subject, _ in heard} == {f"{prefix}_changed.tags"}
    # The log: the five creations at 1..5, the rename of the first at 6, the deletion of the second at 7.
    assert last == 7
    changed_at = {**{seq: numbers[seq - 1] for seq in range(1, 6)}, 6: numbers[0], 7: numbers[1]}
    sequences = [change.sequence for _, change in heard]
    assert sequences == sorted(set(sequences)) and sequences[-1] == last
    reached = 0
    for _, change in heard:  # each batch announces exactly the objects of its own events
        assert set(change.ids) == {changed_at[seq] for seq in range(reached + 1, change.sequence + 1)}
        assert list(change.ids) == sorted(change.ids)
        reached = change.sequence
    assert all(change.projection == "tags" for _, change in heard)
    bridge = NatsBridge(nats_server.url)
    try:
        assert stream_last_sequence(bridge, stream_name) == last  # announcements never enter the domain stream
    finally:
        bridge.close()
