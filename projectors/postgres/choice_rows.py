"""How collection events change rm.choices and rm.choice_items.

Items name images; only images present in rm.images at that point of the log get a row (one deleted before the
collection was changed is left out, exactly as a later ImageDeleted removes its rows), so the same log always
gives the same rows. `position` keeps the owner's order.
"""

from __future__ import annotations

from typing import Any

from events.choices import ChoiceChanged, ChoiceCreated, ChoiceDeleted
from projectors.postgres.ids import object_id


def _q(statement: str, s: str) -> str:
    return statement.replace("{s}", s)


async def _insert_items(cur: Any, s: str, number: int, items: list[dict[str, Any]]) -> None:
    if not items:
        return
    await cur.execute(_q(
        "INSERT INTO {s}.choice_items (choice_id, image_id, weight, position)"
        " SELECT %s, u.image_id, u.weight, u.position FROM"
        " unnest(%s::bigint[], %s::double precision[]) WITH ORDINALITY AS u(image_id, weight, position)"
        " JOIN {s}.images i ON i.id = u.image_id", s),
        (number, [int(i["image_id"]) for i in items], [float(i["weight"]) for i in items]))


async def choice_created(cur: Any, s: str, seq: int, e: ChoiceCreated) -> None:
    number = object_id(e)
    await cur.execute(_q(
        "INSERT INTO {s}.choices (id, user_id, name, public, created_at, updated_at, version)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)", s),
        (number, e.user_id, e.name, e.public, e.timestamp, e.timestamp, seq))
    await _insert_items(cur, s, number, e.items)


async def choice_changed(cur: Any, s: str, seq: int, e: ChoiceChanged) -> None:
    number = object_id(e)
    await cur.execute(_q(
        "UPDATE {s}.choices SET name = COALESCE(%s, name), public = COALESCE(%s, public), updated_at = %s,"
        " version = %s WHERE id = %s", s), (e.name, e.public, e.timestamp, seq, number))
    if e.items is not None:
        await cur.execute(_q("DELETE FROM {s}.choice_items WHERE choice_id = %s", s), (number,))
        await _insert_items(cur, s, number, e.items)


async def choice_deleted(cur: Any, s: str, e: ChoiceDeleted) -> None:
    number = object_id(e)
    await cur.execute(_q("DELETE FROM {s}.choice_items WHERE choice_id = %s", s), (number,))
    await cur.execute(_q("DELETE FROM {s}.choices WHERE id = %s", s), (number,))
