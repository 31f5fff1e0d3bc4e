"""What a reader sees of the objects a dataset or model names (its `items`/`dataset`, a model's cover and source).

The rule is the one featured collections follow (query/routes/choices.py): a reader sees only the entries they
may see. An entry whose object exists is shown when `visible_sql` lets the caller see that object (its owner,
an admin, anyone for a public one); an entry whose object was deleted since is shown to the naming object's
owner and to admins, and to nobody else (docs/catalog.md: items keep what was named). So another user's
private image or featured collection never shows its id to those who may not see it. URLs (`oss`) are shown
as they are.
"""

from __future__ import annotations

from typing import Any

from infra.actor import Actor
from infra.authz import visible_sql

Fragment = tuple[str, list[Any]]

IMAGES_TABLE = "rm.images"
CHOICES_TABLE = "rm.choices"


def shown_sql(actor: Actor, table: str, id_sql: str, owner_col: str) -> Fragment:
    """A boolean: may `actor` see the entry `id_sql` (an object of `table`) of an object owned by `owner_col`?"""
    if actor.is_admin:
        return "true", []
    seen, seen_params = visible_sql(actor, "named.user_id", "named.public")
    gone, gone_params = visible_sql(actor, owner_col, "false")  # deleted: the owner's and admins' only
    return (f"COALESCE((SELECT {seen} FROM {table} named WHERE named.id = {id_sql}), {gone})",
            [*seen_params, *gone_params])


def _ids_sql(actor: Actor, items_col: str, key: str, table: str, owner_col: str) -> Fragment:
    shown, params = shown_sql(actor, table, "(e.v)::bigint", owner_col)
    return (f"(SELECT COALESCE(jsonb_agg(e.v ORDER BY e.n), '[]'::jsonb)"
            f" FROM jsonb_array_elements(COALESCE({items_col}->'{key}', '[]'::jsonb)) WITH ORDINALITY AS e(v, n)"
            f" WHERE {shown})", params)


def items_sql(actor: Actor, items_col: str, owner_col: str) -> Fragment:
    """`{oss, images, choices, repeats}` of the jsonb column `items_col`, in their order, as `actor` may see them
    (items stored before `repeats` existed: 1)."""
    images, image_params = _ids_sql(actor, items_col, "images", IMAGES_TABLE, owner_col)
    choices, choice_params = _ids_sql(actor, items_col, "choices", CHOICES_TABLE, owner_col)
    return (f"jsonb_build_object('oss', COALESCE({items_col}->'oss', '[]'::jsonb), 'images', {images},"
            f" 'choices', {choices}, 'repeats', COALESCE({items_col}->'repeats', '1'::jsonb))",
            [*image_params, *choice_params])


def shown_id_sql(actor: Actor, table: str, id_col: str, owner_col: str) -> Fragment:
    """The id in `id_col` when `actor` may see that entry, else null."""
    shown, params = shown_sql(actor, table, id_col, owner_col)
    return f"CASE WHEN {shown} THEN {id_col} END", params
