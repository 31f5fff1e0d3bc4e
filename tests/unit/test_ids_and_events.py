"""Pure domain code: ids, subjects, event versions and upcasting, tag name rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from command.tags import Tag, clean_tag_name
from events.codec import decode, mapper
from events.ids import MAX_ID, aggregate_uuid, new_id, split_uuid, subject_for, uuid_for_subject
from events.tags import TagCreated, TagRenamed
from events.tasks import TaskSucceeded
from infra.errors import Invalid


def test_new_ids_are_positive_exact_in_json_and_time_ordered() -> None:
    ids = [new_id() for _ in range(2000)]
    assert all(0 < i <= MAX_ID for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_aggregate_uuid_round_trips_through_the_subject() -> None:
    uuid = aggregate_uuid("tag", 123456789)
    assert split_uuid(uuid) == ("tag", 123456789)
    assert subject_for("aidraw", uuid) == "aidraw.tag.123456789"
    assert uuid_for_subject("aidraw", "aidraw.tag.123456789") == uuid
    with pytest.raises(ValueError):
        aggregate_uuid("tag", 0)
    with pytest.raises(ValueError):
        aggregate_uuid("tag", MAX_ID + 1)


def test_a_stored_v1_tag_created_payload_is_upcast_to_v2() -> None:
    # The payload as version 1 of TagCreated wrote it: no `user_id`, no class_version key.
    v1_state = json.dumps({
        "timestamp": {"_type_": "datetime_iso", "_data_": "2025-03-01T10:00:00+00:00"},
        "originator_topic": "command.tags:Tag",
        "name": "sunset",
    }).encode()
    event = decode(aggregate_uuid("tag", 42), 1, "events.tags:TagCreated", v1_state)
    assert isinstance(event, TagCreated)
    assert event.name == "sunset" and event.user_id is None
    assert event.timestamp == datetime(2025, 3, 1, 10, tzinfo=UTC)
    tag = event.mutate(None)
    assert isinstance(tag, Tag) and tag.name == "sunset"


def test_a_stored_v1_task_succeeded_payload_reads_as_an_inference_success() -> None:
    v1_state = json.dumps({
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-03-01T10:00:00+00:00"},
        "originator_topic": "command.tasks:Task", "image_ids": [5, 6], "prompt_handling": "whole",
    }).encode()
    event = decode(aggregate_uuid("task", 42), 4, "events.tasks:TaskSucceeded", v1_state)
    assert isinstance(event, TaskSucceeded)
    assert (event.image_ids, event.prompt_handling, event.model_path) == ([5, 6], "whole", None)


def test_new_payloads_carry_their_class_version() -> None:
    tag = Tag._create(TagCreated, id=aggregate_uuid("tag", 7), name="x", user_id=3)
    stored = mapper().to_stored_event(tag.collect_events()[0])
    assert json.loads(stored.state)["class_version"] == 2


def test_aggregate_replays_its_events() -> None:
    tag = Tag._create(TagCreated, id=aggregate_uuid("tag", 8), name="a", user_id=None)
    tag.rename("b")
    tag.delete()
    events = tag.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert isinstance(replayed, Tag)
    assert (replayed.name, replayed.deleted, replayed.version) == ("b", True, 3)
    assert isinstance(events[1], TagRenamed) and events[1].previous_name == "a"


@pytest.mark.parametrize("raw,expected", [("  cat  ", "cat"), ("black   cat", "black cat"), ("猫", "猫"),
                                          ("\uff23\uff21\uff34", "CAT"), ("a\u00a0\u3000b", "a b"),
                                          ("caf\u0065\u0301", "caf\u00e9"), ("x" * 50, "x" * 50)])
def test_tag_names_are_cleaned(raw: str, expected: str) -> None:
    assert clean_tag_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "a,b", "123", "\uff11\uff12", "x" * 51, "a\x01b", "a\tb", "a\nb",
                                 "c\u200bat", "abc\u202edef", "\ufeffcat", "ca\u00adt", "cat\ufe0f", "a\u2028b",
                                 "\ue000", "\u3164", "\ufdfa" * 3])
def test_bad_tag_names_are_refused(raw: str) -> None:
    with pytest.raises(Invalid):
        clean_tag_name(raw)
