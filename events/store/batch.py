"""Appending to JetStream: one plain publish, or one atomic batch (ADR-50). Coroutines for the bridge's loop.

nats-py has no helper for atomic batches. What the server does (nats-server 2.15, checked by the tests):
- every message carries `Nats-Batch-Id` (one uuid per batch) and `Nats-Batch-Sequence` (1..n); the last one
  also `Nats-Batch-Commit: 1`. The server stages the messages and stores all of them or none at the commit;
- the messages before the commit need no reply subject: an error in any of them (a wrong expected sequence,
  error 10071, or a second expected header on one subject, 10164) is answered on the commit's reply. So the
  first n-1 go out as core publishes and the commit as a request: one round trip per batch. (With a reply
  subject, the first message is answered with an empty message, intermediate ones likewise.)
- the commit's PubAck is `{"stream", "seq", "batch", "count"}` where `seq` is the sequence of the LAST
  message: the batch occupies `seq - count + 1 .. seq`, contiguous;
- `Nats-Msg-Id` is accepted inside a batch and remembered in the duplicate window; a batch carrying a known id
  is refused whole with error 10201 ("atomic publish batch contains duplicate message id"), whereas a plain
  publish of a known id is acknowledged with `duplicate: true` and the earlier sequence;
- more than 1000 messages: 10199; stream without `allow_atomic`: 10174; too many open batches: 10176.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

MAX_BATCH = 1000

# JetStream error codes this package acts on.
WRONG_LAST_SEQUENCE = 10071
BATCH_EXPECTED_SEQ_NOT_FIRST = 10164
BATCH_INCOMPLETE_TOO_MANY = 10176
BATCH_DISABLED = 10174
BATCH_TOO_LARGE = 10199
BATCH_DUPLICATE_MSG_ID = 10201


@dataclass(frozen=True)
class OutMsg:
    subject: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ack:
    seq: int  # the sequence of the last message stored
    count: int  # how many messages the ack covers
    # A plain publish whose Nats-Msg-Id was seen: nothing was stored, `seq` is the earlier message's.
    duplicate: bool


class JetStreamAPIError(Exception):
    """An error reply from JetStream: `err_code` is the JetStream code (10071 ...)."""

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(f"JetStream error {err_code} ({code}): {description}")
        self.code = code
        self.err_code = err_code
        self.description = description


class NoStreamError(Exception):
    """Nobody answered: no stream listens on the subject (or the server lost it)."""


def parse_ack(data: bytes) -> Ack:
    reply = json.loads(data) if data else {}
    error = reply.get("error")
    if error:
        raise JetStreamAPIError(int(error.get("code", 0)), int(error.get("err_code", 0)),
                                str(error.get("description", "")))
    if "seq" not in reply:
        raise JetStreamAPIError(0, 0, f"unexpected reply to a publish: {data[:200]!r}")
    return Ack(
        seq=int(reply["seq"]), count=int(reply.get("count", 1)), duplicate=bool(reply.get("duplicate"))
    )


async def publish(nc: Client, msgs: Sequence[OutMsg], timeout: float) -> Ack:
    """Store `msgs`: a single one as a plain publish (~0.3 ms), several as one atomic batch (~3-5 ms: the
    server stages a batch in files before committing it).

    Raises JetStreamAPIError for a refusal, NoStreamError, or a TimeoutError subclass when no reply came
    (the outcome is then unknown).
    """
    if not msgs:
        raise ValueError("nothing to publish")
    if len(msgs) > MAX_BATCH:
        raise ValueError(f"an atomic batch holds at most {MAX_BATCH} messages, not {len(msgs)}")
    try:
        if len(msgs) == 1:
            reply = await nc.request(msgs[0].subject, msgs[0].body, timeout=timeout, headers=msgs[0].headers)
        else:
            reply = await _publish_batch(nc, msgs, timeout)
    except NoRespondersError:
        raise NoStreamError(f"no JetStream stream answers on {msgs[0].subject}") from None
    return parse_ack(reply.data)


async def _publish_batch(nc: Client, msgs: Sequence[OutMsg], timeout: float) -> Msg:
    batch_id = uuid.uuid4().hex
    last = len(msgs)
    for number, msg in enumerate(msgs[:-1], 1):
        headers = {**msg.headers, "Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(number)}
        await nc.publish(msg.subject, msg.body, headers=headers)
    commit = msgs[-1]
    headers = {**commit.headers, "Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(last),
               "Nats-Batch-Commit": "1"}
    # The connection keeps order: the commit reaches the server after the staged messages.
    return await nc.request(commit.subject, commit.body, timeout=timeout, headers=headers)
