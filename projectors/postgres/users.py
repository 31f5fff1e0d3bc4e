"""Read model of users: one row per account, a tombstone (no name, no email) once deleted.

Names and emails arrive sealed; the projector opens them with the user's key, read through its own
transaction (the key lookup is injected by the composition root: projectors/ imports events/ only). Once a
user's key is erased the values stay closed, so a rebuild after erasure writes the same rows as the live copy:
deletion blanks them in both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from events.ids import split_uuid
from events.personal import unseal_or_none
from events.users import (
    UserDeleted,
    UserEmailChanged,
    UserErased,
    UserPasswordChanged,
    UserRegistered,
    UserRenamed,
    UserRoleChanged,
)
from projectors.base import Projector

log = logging.getLogger("aidraw.projector.users")


_USER_EVENTS = (UserRegistered, UserRenamed, UserEmailChanged, UserPasswordChanged, UserRoleChanged, UserDeleted,
                UserErased)


class PersonalKeys(Protocol):
    async def key(self, cur: Any, user_id: int) -> bytes | None:
        """The user's key, read through the projector's cursor; None once erased."""
        ...


def object_id(event: Any) -> int:
    split = split_uuid(event.originator_id)
    assert split is not None
    return split[1]


async def open_field(keys: PersonalKeys, cur: Any, user_id: int, field: str, sealed: str) -> str | None:
    value = unseal_or_none(await keys.key(cur, user_id), user_id, field, sealed)
    if value is None:
        log.info("a sealed field stays closed (erased or no key)", extra={"user_id": user_id, "field": field})
    return value


class UsersProjector(Projector):
    name = "users"
    tables = ("users",)
    collections = ("users",)

    def __init__(self, keys: PersonalKeys) -> None:
        self.keys = keys

    def ddl(self) -> Sequence[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {s}.users ("
            " id bigint PRIMARY KEY, name text, email text, role text NOT NULL,"
            " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
            " deleted_at timestamptz, erased boolean NOT NULL DEFAULT false, version bigint NOT NULL)",
            "CREATE INDEX IF NOT EXISTS users_live_created ON {s}.users (created_at DESC, id DESC)"
            " WHERE deleted_at IS NULL",
        ]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if not isinstance(event, _USER_EVENTS):
            return
        number = object_id(event)
        if isinstance(event, UserRegistered):
            name = await open_field(self.keys, cur, number, "name", event.name)
            email = await open_field(self.keys, cur, number, "email", event.email)
            await cur.execute(
                self.sql("INSERT INTO {s}.users (id, name, email, role, created_at, updated_at, version)"
                         " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING", s),
                (number, name, email, event.role, event.timestamp, event.timestamp, seq),
            )
        elif isinstance(event, UserRenamed):
            name = await open_field(self.keys, cur, number, "name", event.name)
            await self._update(cur, s, seq, event, number, "name = %s", name)
        elif isinstance(event, UserEmailChanged):
            email = await open_field(self.keys, cur, number, "email", event.email)
            await self._update(cur, s, seq, event, number, "email = %s", email)
        elif isinstance(event, UserRoleChanged):
            await self._update(cur, s, seq, event, number, "role = %s", event.role)
        elif isinstance(event, UserPasswordChanged):
            await self._update(cur, s, seq, event, number, "")
        elif isinstance(event, UserDeleted):
            await self._update(cur, s, seq, event, number, "deleted_at = %s, name = NULL, email = NULL",
                               event.timestamp)
        elif isinstance(event, UserErased):
            await self._update(cur, s, seq, event, number, "erased = true, name = NULL, email = NULL")

    async def _update(self, cur: Any, s: str, seq: int, event: Any, number: int, assignments: str,
                      *values: Any) -> None:
        assignments = f"{assignments}, " if assignments else ""
        await cur.execute(
            self.sql(f"UPDATE {{s}}.users SET {assignments}updated_at = %s, version = %s WHERE id = %s", s),
            (*values, event.timestamp, seq, number),
        )
