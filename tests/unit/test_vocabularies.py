"""One source for each vocabulary: an image's fields are ImageUploaded's (events/images.py), a model's types,
bases and statuses are events/models.py's Literals. What is derived from them cannot drift; the typed copies
that Python needs spelled out are checked against them here."""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import get_args

from command.images import Image, NewImage
from command.models import INITIAL, LOCKED
from events.images import IMAGE_FIELDS, SHOWN_FIELDS, UNSHOWN_FIELDS
from events.models import BASE_MODELS, MODEL_STATUSES, MODEL_TYPES
from infra.schemas_catalog import BaseModelName, ModelIn, ModelTypeName
from infra.schemas_images import ImageFields, ImageOut, ImageWritten
from projectors.postgres.image_rows import IMAGE_COLUMNS
from projectors.postgres.image_vectors import VECTOR_COLUMN_NAMES
from projectors.postgres.images import DDL
from query.collections import MODELS
from query.filters import OneOf

# What a client sees of an image beyond its stored fields: made from other columns, or the read model's own.
SHOWN_BESIDE = {"id", "url", "thumbnail_url", "tags", "user", "created_at", "updated_at"}


def test_the_upload_names_every_field_once_and_unshown_ones_are_real_fields() -> None:
    assert len(set(IMAGE_FIELDS)) == len(IMAGE_FIELDS)
    assert set(IMAGE_FIELDS) >= UNSHOWN_FIELDS
    assert set(SHOWN_FIELDS) == set(IMAGE_FIELDS) - UNSHOWN_FIELDS


def test_the_command_side_holds_exactly_the_upload_fields() -> None:
    assert {f.name for f in dataclasses.fields(NewImage)} == set(IMAGE_FIELDS) - {"user_id", "tag_ids"}
    assert list(inspect.signature(Image.__init__).parameters)[1:] == list(IMAGE_FIELDS)


def test_clients_see_the_shown_fields_and_what_is_made_beside_them() -> None:
    assert set(ImageFields.model_fields) == set(SHOWN_FIELDS) | SHOWN_BESIDE
    assert set(ImageOut.model_fields) == set(ImageWritten.model_fields) == set(ImageFields.model_fields) | {"likes"}


def test_the_read_model_table_has_a_column_for_every_field() -> None:
    table = next(statement for statement in DDL if ".images (" in statement)
    body = table[table.index("(") + 1:table.rindex(")")]
    columns = [re.match(r"\s*(\w+)", part).group(1) for part in body.split(",")  # type: ignore[union-attr]
               if re.match(r"\s*[a-z_]+ [a-z]", part)]
    assert sorted(columns) == sorted([*IMAGE_COLUMNS, *VECTOR_COLUMN_NAMES])


def test_model_vocabularies_come_from_the_events() -> None:
    assert INITIAL in MODEL_STATUSES and set(MODEL_STATUSES) >= LOCKED
    filters = {name: f.allowed for name, f in MODELS.params.items() if isinstance(f, OneOf)}
    assert filters == {"status": MODEL_STATUSES, "type": MODEL_TYPES, "base_model": BASE_MODELS}
    assert get_args(get_args(ModelTypeName)[0]) == MODEL_TYPES
    assert get_args(get_args(BaseModelName)[0]) == BASE_MODELS
    assert ModelIn.model_fields["type"].annotation == get_args(ModelTypeName)[0]
