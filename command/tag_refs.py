"""Tags by name, as images and models carry them: names in the API, tag ids in the events.

A name nobody uses yet becomes a new tag in the SAME atomic write as the object that uses it: the caller appends
the returned Tag aggregates and their name claims together with its own events (`app.store(obj, *new_tags,
claims=claims)`). Two writers creating one new name at once: the second write is refused whole with a
ClaimConflict, and `retry_on_tag_race` runs the attempt again, which then finds the tag the first one created.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from command.app import CommandApp, retry_on_conflict
from command.claims import claim
from command.tags import Tag, clean_tag_name
from events.ids import aggregate_uuid, new_id
from events.store.protocol import Claim, ClaimConflict
from events.tags import TagCreated
from infra.actor import Actor
from infra.errors import Conflict, Invalid, NotFound

MAX_TAGS = 20
R = TypeVar("R")


def clean_tag_names(names: Sequence[str], field: str = "body.tags") -> list[str]:
    """The names as stored, in the order given, without repeats (ignoring case)."""
    if len(names) > MAX_TAGS:
        raise Invalid(f"At most {MAX_TAGS} tags.", field=field)
    cleaned: dict[str, str] = {}
    for raw in names:
        try:
            name = clean_tag_name(raw)
        except Invalid as exc:
            raise Invalid(f"Tag {raw[:60]!r}: {exc.detail}", field=field) from None
        cleaned.setdefault(name.casefold(), name)
    return list(cleaned.values())


def _holder(app: CommandApp, name: str) -> str | None:
    return app.event_log.read_claim(claim(app.settings.subject_prefix, "tagname", name, "").subject)


def resolve_tags(app: CommandApp, actor: Actor, names: Sequence[str]) -> tuple[list[int], list[Tag], list[Claim]]:
    """Tag ids for `names` (cleaned and de-duplicated here), plus the tags to store (new ones, and existing ones
    that another user's first use shares: command/tags.py `used_by`) and the new ones' claims.

    The tag holding a name is read from the name's claim subject in the log (the read model may lag)."""
    prefix = app.settings.subject_prefix
    ids: list[int] = []
    new_tags: list[Tag] = []
    claims: list[Claim] = []
    for name in clean_tag_names(names):
        holder = _holder(app, name)
        if holder is not None and holder.isdigit():
            ids.append(int(holder))
            _share(app, actor, int(holder), new_tags)
            continue
        number = new_id()
        new_tags.append(Tag._create(TagCreated, id=aggregate_uuid("tag", number), name=name, user_id=actor.user_id))
        claims.append(claim(prefix, "tagname", name, str(number)))
        ids.append(number)
    return ids, new_tags, claims


def _share(app: CommandApp, actor: Actor, number: int, to_store: list[Tag]) -> None:
    try:
        tag = app.load(Tag, "tag", number)
    except NotFound:  # deleted since its claim was read: the write's own checks answer for it
        return
    was_shared = tag.shared
    tag.used_by(actor.user_id)
    if tag.shared and not was_shared:  # one TagShared to append with the object that uses it
        to_store.append(tag)


def tag_names(app: CommandApp, tag_ids: Sequence[int]) -> list[str]:
    """The current names of tags, in order; tags deleted since are left out (as the read model does)."""
    names = []
    for number in tag_ids:
        try:
            names.append(app.load(Tag, "tag", number).name)
        except NotFound:  # deleted since: it simply no longer shows
            continue
    return names


def retry_on_tag_race(attempt: Callable[[], R], tries: int = 5) -> R:
    """`retry_on_conflict`, and also again when another writer created one of our new tag names first."""
    for _ in range(tries - 1):
        try:
            return retry_on_conflict(attempt)
        except ClaimConflict:
            continue
    try:
        return retry_on_conflict(attempt)
    except ClaimConflict:
        raise Conflict("Tags with these names were being created at the same time; try again.") from None
