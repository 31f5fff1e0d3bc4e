"""Following the event stream for eventsourcing's `ApplicationRecorder.subscribe()`.

It follows the STREAM with an ordered consumer (ephemeral, in-memory, flow-controlled; nats-py recreates it
from the last sequence seen when it detects a gap or a lost consumer), not the subjects with a core
subscription: a core subscription would also see messages the stream refused (a stale expected sequence, a
batch that was never committed). Claim and idempotency messages, which have no `Es-Topic`, are skipped.

Backpressure: the consumer is read with `next_msg` rather than a callback, so nats-py answers the server's
flow-control requests only once the messages before them have been taken: a slow reader slows delivery
instead of piling messages up in memory.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import nats.errors
from eventsourcing.persistence import Notification, Subscription
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from events.store.bridge import ConnectionLost, NatsBridge, NotConnected

if TYPE_CHECKING:
    from nats.js.client import JetStreamContext

    from events.store.jetstream import JetStreamApplicationRecorder

_POLL_S = 0.25  # how long one wait on the loop lasts: bounds how late a stop() from another thread is seen
_TAKE = 500  # messages taken from the loop per round trip


class JetStreamSubscription(Subscription["JetStreamApplicationRecorder"]):
    def __init__(
        self,
        recorder: JetStreamApplicationRecorder,
        bridge: NatsBridge,
        stream: str,
        prefix: str,
        to_notification: Callable[[str, int, dict[str, str], bytes], Notification | None],
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._bridge = bridge
        self._to_notification = to_notification
        self._buffer: deque[Notification] = deque()
        self._stop_lock = threading.Lock()
        self._unsubscribed = False
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=(gt or 0) + 1)
        self._sub: JetStreamContext.PushSubscription = bridge.run(
            bridge.js.subscribe(f"{prefix}.>", stream=stream, ordered_consumer=True, config=config)
        )

    def stop(self) -> None:
        super().stop()
        with self._stop_lock:
            if self._unsubscribed:
                return
            self._unsubscribed = True
        # The consumer is ephemeral: dropping interest lets the server remove it.
        with contextlib.suppress(Exception):
            self._bridge.run(self._sub.unsubscribe(), timeout=5)

    def __next__(self) -> Notification:
        while True:
            if self._has_been_stopped:
                raise StopIteration
            if self._buffer:
                return self._buffer.popleft()
            try:
                msgs = self._bridge.run(self._take(), timeout=_POLL_S + 10)
            except (NotConnected, ConnectionLost):  # the ordered consumer resumes after nats-py reconnects
                time.sleep(_POLL_S)
                continue
            except Exception:
                if self._has_been_stopped:
                    raise StopIteration from None
                raise
            for msg in msgs:
                notification = self._to_notification(
                    msg.subject, msg.metadata.sequence.stream, dict(msg.headers or {}), msg.data
                )
                if notification is None or (self._topics and notification.topic not in self._topics):
                    continue
                self._buffer.append(notification)

    async def _take(self) -> list[Msg]:
        try:
            first = await self._sub.next_msg(timeout=_POLL_S)
        except nats.errors.TimeoutError:
            return []
        msgs = [first]
        while self._sub.pending_msgs and len(msgs) < _TAKE:
            msgs.append(await self._sub.next_msg(timeout=_POLL_S))
        return msgs
