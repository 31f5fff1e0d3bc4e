"""Single-use tickets for opening a socket without a token in the URL (proxies log URLs).

`POST /api/tickets` (authenticated) answers a random ticket valid for `TICKET_TTL_S`; the socket presents it as
`?ticket=`. The ticket is kept in a NATS key-value bucket shared by every API replica, under its SHA-256 (the
bucket never holds a usable secret), with the session id as the value: the socket then acts as that session,
whose liveness is checked like a token's. Using it deletes it with the revision read (optimistic concurrency),
so two replicas cannot both accept it.
"""

from __future__ import annotations

import hashlib
import secrets

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

TICKET_TTL_S = 30.0


def _key(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class Tickets:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, stream_name: str) -> Tickets:
        kv = await js.create_key_value(KeyValueConfig(bucket=f"{stream_name}_live_tickets", ttl=TICKET_TTL_S,
                                                      storage=StorageType.MEMORY))
        return cls(kv)

    async def issue(self, session_id: int) -> str:
        ticket = secrets.token_urlsafe(24)
        await self._kv.create(_key(ticket), str(session_id).encode())
        return ticket

    async def redeem(self, ticket: str) -> int | None:
        """The ticket's session id, once; None when it is unknown, used or expired."""
        if not ticket or len(ticket) > 100:
            return None
        try:
            entry = await self._kv.get(_key(ticket))
            await self._kv.delete(entry.key, last=entry.revision)
        except (KeyNotFoundError, KeyWrongLastSequenceError):
            return None
        return int(entry.value or b"0") or None
