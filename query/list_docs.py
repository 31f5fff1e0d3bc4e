"""The list parameters of each collection, as OpenAPI parameters: `/docs` shows them and lets one try them.

The list routes read `request.query_params` through the one parser (query/listing.py), so FastAPI cannot see
the parameters; this describes them from the same Collection table the parser uses, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from query.filters import Contains, CreatedOn, Filter, Flag, InChoice, LikedBy, LiveStatus, OneOf, OwnedBy, Tagged
from query.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Collection

COMBINING = " Comma-separated values are a union; repeating the parameter intersects."


# Repeating a parameter intersects: declared as an array sent as `tag=a&tag=b`, so /docs can send several.
REPEATABLE: dict[str, Any] = {"type": "array", "items": {"type": "string"}}


def _describe(name: str, filter: Filter) -> tuple[str, dict[str, Any]]:
    text: dict[type[Filter], str] = {
        OwnedBy: "Owned by this user id.",
        Tagged: "Carrying this tag (name or id).",
        Flag: "true: only public items; false: only private ones (your own, or any for an admin). Also 1/0, "
              "yes/no, on/off, in any case.",
        CreatedOn: "Created on a day, month or year: YYYY, YYYYMM or YYYYMMDD; a trailing + (on or after) or - "
                   "(on or before), or A~B (between, inclusive).",
        InChoice: "In this featured collection (id).",
        LikedBy: "Liked by this user id.",
    }
    schema: dict[str, Any] = {"type": "string"}
    if isinstance(filter, OneOf | LiveStatus):
        return f"One of: {', '.join(filter.allowed)}.{COMBINING}", REPEATABLE
    if isinstance(filter, Contains):
        return f"Text found in {' or '.join(filter.columns)} (case-insensitive).", schema
    for kind, words in text.items():
        if isinstance(filter, kind):
            if kind in (Flag, CreatedOn):
                return words, schema
            return words + COMBINING, REPEATABLE
    return f"Filter by {name}.", schema


def list_parameters(collection: Collection) -> dict[str, Any]:
    """`openapi_extra` for the route that lists `collection`."""
    parameters: list[dict[str, Any]] = [
        {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
         "description": "Page number, from 1."},
        {"name": "page_size", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
         "description": "Items per page (also spelled pageSize)."},
        {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "Instead of page: the `cursor` of the previous answer, for deep pages at constant cost."},
        {"name": "sort", "in": "query", "required": False,
         "schema": {"type": "string", "enum": list(collection.sorts), "default": collection.sorts[0]},
         "description": "Order: date- newest first, date+ oldest first" +
                        (", likes most liked first." if "likes" in collection.sorts else ".")},
    ]
    aliases = {"user_id", "pageSize"}
    for name, filter in collection.params.items():
        if name in aliases:
            continue
        description, schema = _describe(name, filter)
        if name == "user":
            description += " (Also spelled user_id.)"
        parameter = {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
        if schema is REPEATABLE:
            parameter |= {"style": "form", "explode": True}
        parameters.append(parameter)
    return {"parameters": parameters}
