"""Read model of sessions: one row per login, for `GET /api/sessions` (never a token, not even its hash).

A password change ends the account's sessions opened against an older version of it (except the one that
made the change), and a deleted account ends them all: the same rules as the token check
(infra/session_state.py), which reads the log and so never waits for this projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.sessions import SessionEnded, SessionExtended, SessionStarted
from events.users import UserDeleted, UserErased, UserPasswordChanged
from projectors.base import Projector
from projectors.postgres.users import PersonalKeys, object_id, open_field


class SessionsProjector(Projector):
    name = "sessions"
    tables = ("sessions",)
    collections = ("sessions",)

    def __init__(self, keys: PersonalKeys) -> None:
        self.keys = keys

    def ddl(self) -> Sequence[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {s}.sessions ("
            " id bigint PRIMARY KEY, user_id bigint NOT NULL, user_version bigint NOT NULL,"
            " created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL, last_seen_at timestamptz NOT NULL,"
            " user_agent text, ended_at timestamptz, end_reason text, version bigint NOT NULL)",
            "CREATE INDEX IF NOT EXISTS sessions_user ON {s}.sessions (user_id, created_at DESC)"
            " WHERE ended_at IS NULL",
        ]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, SessionStarted):
            agent = await open_field(self.keys, cur, event.user_id, "user_agent", event.user_agent)
            await cur.execute(
                self.sql("INSERT INTO {s}.sessions (id, user_id, user_version, created_at, expires_at,"
                         " last_seen_at, user_agent, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                         " ON CONFLICT (id) DO NOTHING", s),
                (object_id(event), event.user_id, event.user_version, event.timestamp, event.expires_at,
                 event.timestamp, agent, seq),
            )
        elif isinstance(event, SessionExtended):
            await cur.execute(
                self.sql("UPDATE {s}.sessions SET expires_at = %s, last_seen_at = %s, version = %s WHERE id = %s", s),
                (event.expires_at, event.timestamp, seq, object_id(event)),
            )
        elif isinstance(event, SessionEnded):
            await cur.execute(
                self.sql("UPDATE {s}.sessions SET ended_at = %s, end_reason = %s, version = %s"
                         " WHERE id = %s AND ended_at IS NULL", s),
                (event.timestamp, event.reason, seq, object_id(event)),
            )
        elif isinstance(event, UserPasswordChanged):
            await cur.execute(
                self.sql("UPDATE {s}.sessions SET ended_at = %s, end_reason = 'password changed', version = %s"
                         " WHERE user_id = %s AND ended_at IS NULL AND user_version < %s"
                         " AND id IS DISTINCT FROM %s", s),
                (event.timestamp, seq, object_id(event), event.originator_version, event.kept_session_id),
            )
        elif isinstance(event, UserDeleted):
            await cur.execute(
                self.sql("UPDATE {s}.sessions SET ended_at = %s, end_reason = 'account deleted', version = %s"
                         " WHERE user_id = %s AND ended_at IS NULL", s),
                (event.timestamp, seq, object_id(event)),
            )
        elif isinstance(event, UserErased):
            await cur.execute(
                self.sql("UPDATE {s}.sessions SET user_agent = NULL WHERE user_id = %s", s), (object_id(event),)
            )
