"""Indexes of the images read model that the list filters need.

Owned by the lists work (docs/read-models-images.md): the images projector creates whatever this list holds,
after its own tables and minimal indexes. Statements use `{s}` for the schema and IF NOT EXISTS.
"""

from __future__ import annotations

IMAGE_INDEXES: list[str] = []
