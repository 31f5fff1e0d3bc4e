"""eventsourcing's own recorder contract tests, run against the JetStream recorders on a real nats-server.

The library's tests hard-code versions and notification ids from 1, so each test gets a fresh stream (and a
subject prefix of its own, the stream name lowercased, so streams never overlap). They are unittest
TestCases: an autouse fixture hands them the server's bridge and the stream name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)

from aidraw.services import NatsServer
from events.store.bridge import NatsBridge
from events.store.jetstream import JetStreamAggregateRecorder, JetStreamApplicationRecorder
from events.store.stream import ensure_stream


@pytest.fixture(scope="module")
def bridge(nats_server: NatsServer) -> Iterator[NatsBridge]:
    bridge = NatsBridge(nats_server.url)
    yield bridge
    bridge.close()


@pytest.fixture(autouse=True)
def _jetstream(request: pytest.FixtureRequest, bridge: NatsBridge, stream_name: str) -> None:
    request.instance.bridge = bridge
    request.instance.stream = stream_name


class JetStreamCase:
    bridge: NatsBridge
    stream: str

    def _where(self) -> tuple[NatsBridge, str, str]:
        prefix = self.stream.lower()
        ensure_stream(self.bridge, self.stream, prefix)
        return self.bridge, self.stream, prefix


class TestJetStreamAggregateRecorder(JetStreamCase, AggregateRecorderTestCase):
    def create_recorder(self) -> JetStreamAggregateRecorder:
        return JetStreamAggregateRecorder(*self._where())


class TestJetStreamApplicationRecorder(
    JetStreamCase, ApplicationRecorderTestCase[JetStreamApplicationRecorder]
):
    def create_recorder(self) -> JetStreamApplicationRecorder:
        return JetStreamApplicationRecorder(*self._where())

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestJetStreamNonInterleavingNotificationIDs(JetStreamCase, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> JetStreamApplicationRecorder:
        return JetStreamApplicationRecorder(*self._where())


del AggregateRecorderTestCase, ApplicationRecorderTestCase, NonInterleavingNotificationIDsBaseCase
