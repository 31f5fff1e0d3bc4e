"""Training material, as datasets and models name it: `{"oss": [urls], "images": [ids], "choices": [ids]}`.

Every entry is checked when it is written: URLs must be public http(s) URLs (infra/urls.py: no private, loopback,
link-local or metadata address, in any spelling) or the service's own storage (`/api/blobs/<key>`),
and images and featured collections must exist and be visible to the OWNER of the object that names them. One bad
entry refuses the whole write with a 422 naming it. Counts are bounded by the input schema.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from command.app import CommandApp
from events.ids import aggregate_uuid
from infra.actor import Actor
from infra.authz import can_see
from infra.errors import Invalid
from infra.storage import validate_key
from infra.urls import NOTHING_ALLOWED, AllowList, UrlRefused, check_url

OWN_STORAGE = "/api/blobs/"
KINDS = {"images": ("image", "image"), "choices": ("choice", "featured collection")}


def _url_problem(url: str, allowed: AllowList = NOTHING_ALLOWED) -> str | None:
    if url.startswith(OWN_STORAGE):
        if not url.isprintable() or any(c.isspace() for c in url):
            return "contains spaces or control characters"
        try:
            validate_key(url[len(OWN_STORAGE):])
        except ValueError:
            return "is not a blob of this service (/api/blobs/<key>)"
        return None
    try:
        check_url(url, allowed)  # no DNS here: training checks every resolved address when it fetches
    except UrlRefused as refused:
        return f"{refused}; URLs must be public http(s) URLs, or /api/blobs/<key> of this service"
    return None


def _check_unique(values: list[Any], field: str) -> None:
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise Invalid(f"{field.rsplit('.', 1)[-1]}[{index}] {value!r} is listed twice.", field=f"{field}.{index}")
        seen.add(value)


def check_visible(app: CommandApp, owner: Actor, kind: str, what: str, number: int, field: str) -> None:
    found: Aggregate | None
    try:
        found = app.repository.get(aggregate_uuid(kind, number))
    except AggregateNotFoundError:
        found = None
    # One answer for "does not exist" and "exists but is private to someone else": existence must not leak.
    if found is None or getattr(found, "deleted", False) or not can_see(
            owner, getattr(found, "user_id", None), bool(getattr(found, "public", False))):
        raise Invalid(f"There is no {what} {number} that the owner can see.", field=field)


def check_items(app: CommandApp, owner: Actor, items: dict[str, Any], field: str) -> dict[str, Any]:
    """The items as stored (every list present, and `repeats`), or Invalid naming the first bad entry. `owner` is
    the actor whose visibility counts (command/owned.py: owner_view)."""
    lists = {"oss": list(items.get("oss", [])), "images": list(items.get("images", [])),
             "choices": list(items.get("choices", []))}
    for index, url in enumerate(lists["oss"]):
        problem = _url_problem(url, app.settings.url_allowed_hosts)
        if problem:
            raise Invalid(f"oss[{index}] {url[:100]!r} {problem}.", field=f"{field}.oss.{index}")
    for key, values in lists.items():
        _check_unique(values, f"{field}.{key}")
    checked: dict[str, Any] = {**lists, "repeats": int(items.get("repeats", 1))}
    for key, (kind, what) in KINDS.items():
        for index, number in enumerate(checked[key]):
            check_visible(app, owner, kind, what, number, f"{field}.{key}.{index}")
    return checked
