"""Reading the stream with direct get (stream `allow_direct`), without consumers. Coroutines for the bridge.

- last message of a subject: a request to `$JS.API.DIRECT.GET.<stream>.<subject>`: one reply, the message or
  a `404` status;
- a run of messages: `{"seq": start, "next_by_subj": filter, "batch": n}` to `$JS.API.DIRECT.GET.<stream>`:
  several replies to one inbox, one per message (headers `Nats-Subject`, `Nats-Sequence`, `Nats-Num-Pending`
  and the stored headers), ended by a `204 EOB` status whose `Nats-Num-Pending` says how many matching
  messages remain after the last one sent (the server may stop early on its own byte limit), or a `404` when
  nothing matches from `start`. nats-py's `request()` returns only the first reply, hence the inbox here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from events.store.batch import JetStreamAPIError, NoStreamError


@dataclass(frozen=True)
class StoredMsg:
    subject: str
    seq: int
    headers: dict[str, str]
    data: bytes


def _status(msg: Msg) -> str | None:
    return msg.headers.get("Status") if msg.headers else None


def _stored(msg: Msg) -> StoredMsg:
    headers = {str(k): str(v) for k, v in (msg.headers or {}).items()}
    return StoredMsg(subject=headers["Nats-Subject"], seq=int(headers["Nats-Sequence"]), headers=headers,
                     data=bytes(msg.data))


def _refusal(msg: Msg, stream: str) -> Exception:
    status = _status(msg)
    if status == "503":
        return NoStreamError(f"stream {stream} does not answer direct gets (missing, or allow_direct off)")
    description = str(msg.headers.get("Description", "")) if msg.headers else ""
    try:
        error = json.loads(msg.data).get("error", {}) if msg.data else {}
    except ValueError:
        error = {}
    return JetStreamAPIError(int(status or error.get("code", 0)), int(error.get("err_code", 0)),
                             description or str(error.get("description", "direct get failed")))


async def _get_one(nc: Client, stream: str, api: str, payload: bytes, timeout: float) -> StoredMsg | None:
    """One direct get: the message, None when there is none, an error for any other refusal."""
    try:
        reply = await nc.request(api, payload, timeout=timeout)
    except NoRespondersError:
        raise NoStreamError(f"stream {stream} does not answer direct gets") from None
    status = _status(reply)
    if status == "404":
        return None
    if status is not None:
        raise _refusal(reply, stream)
    return _stored(reply)


async def get_last(nc: Client, stream: str, subject: str, timeout: float) -> StoredMsg | None:
    """The last message stored on `subject`, None when it has none."""
    return await _get_one(nc, stream, f"$JS.API.DIRECT.GET.{stream}.{subject}", b"", timeout)


async def get_seq(nc: Client, stream: str, seq: int, timeout: float) -> StoredMsg | None:
    """The message at sequence `seq` (or, when that one is gone, the next one), None past the end."""
    return await _get_one(nc, stream, f"$JS.API.DIRECT.GET.{stream}", json.dumps({"seq": seq}).encode(), timeout)


def stored_time(msg: StoredMsg) -> float:
    """When the server stored `msg`, in seconds since the epoch (`Nats-Time-Stamp`, RFC 3339 in ns)."""
    stamp = msg.headers["Nats-Time-Stamp"]
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


async def get_batch(
    nc: Client, stream: str, *, subjects: str, seq: int, batch: int, timeout: float
) -> tuple[list[StoredMsg], bool]:
    """Up to `batch` messages matching `subjects` (a subject or wildcard) from sequence `seq` on.

    Returns the messages and whether more matching messages exist after them.
    """
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        request = json.dumps({"seq": max(seq, 1), "next_by_subj": subjects, "batch": batch}).encode()
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", request, reply=inbox)
        out: list[StoredMsg] = []
        while True:
            msg = await sub.next_msg(timeout=timeout)
            status = _status(msg)
            if status is None:
                out.append(_stored(msg))
            elif status == "204":  # end of this batch
                pending = int(msg.headers.get("Nats-Num-Pending", "0")) if msg.headers else 0
                return out, pending > 0
            elif status == "404":  # nothing (more) matches
                return out, False
            else:
                raise _refusal(msg, stream)
    finally:
        await sub.unsubscribe()


async def get_range(
    nc: Client, stream: str, *, subjects: str, seq: int, timeout: float, stop: int | None = None,
    page: int = 1000,
) -> list[StoredMsg]:
    """Every message matching `subjects` from `seq` to `stop` (inclusive; None: to the end)."""
    out: list[StoredMsg] = []
    while stop is None or seq <= stop:
        size = page if stop is None else min(page, stop - seq + 1)
        msgs, more = await get_batch(nc, stream, subjects=subjects, seq=seq, batch=size, timeout=timeout)
        out.extend(m for m in msgs if stop is None or m.seq <= stop)
        if not msgs or not more:
            break
        seq = msgs[-1].seq + 1
    return out
