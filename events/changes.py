"""What a projection announces after each commit: which objects of which collection changed, and the stream
sequence the projection reached, on core NATS subjects `<prefix>_changed.<collection>` (outside the domain
stream's `<prefix>.>`, so JetStream never stores them).

A subscriber (the live feed) reads the objects with an ordinary GET, waiting for `sequence` with the
`X-Event-Sequence` header, and so pushes exactly what a GET now shows. Announcements are at most once (core
NATS): a subscriber that was away reads the current state instead of replaying them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ObjectsChanged:
    """Objects of one collection that a committed batch changed (created, updated or deleted)."""

    collection: str  # as the HTTP API names it: "images", "tags", ...
    ids: tuple[int, ...]
    sequence: int  # the stream sequence the projection reached with this commit
    projection: str = field(default="")

    def encode(self) -> bytes:
        return json.dumps({"collection": self.collection, "ids": list(self.ids), "sequence": self.sequence,
                           "projection": self.projection}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> ObjectsChanged:
        body = json.loads(data)
        return cls(str(body["collection"]), tuple(int(i) for i in body["ids"]), int(body["sequence"]),
                   str(body.get("projection", "")))


def changes_prefix(domain_prefix: str) -> str:
    # `<prefix>_changed.>` does not overlap the domain stream's `<prefix>.>` (like the views stream's prefix).
    return f"{domain_prefix}_changed"


def changed_subject(domain_prefix: str, collection: str) -> str:
    return f"{changes_prefix(domain_prefix)}.{collection}"


def collection_of_kind(kind: str) -> str:
    """The HTTP collection of an aggregate kind (events/ids.py KINDS): "image" -> "images"."""
    return kind if kind.endswith("s") else f"{kind}s"
