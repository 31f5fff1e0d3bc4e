"""Command handlers on the in-memory event store (events/store/memory.py): no server, the same answers.

What the store itself guarantees is proven in tests/contract/test_event_stores.py; here the handlers' rules
(unique names through claims, a rename releasing the old name, an idempotent create) run on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from command.app import CommandApp
from command.claims import claim
from command.tags import create_tag, delete_tag, rename_tag
from events.store.protocol import DuplicateRequest
from infra.actor import Actor
from infra.errors import Conflict, Forbidden
from infra.settings import Settings

ANN = Actor(user_id=1, role="user")
BOB = Actor(user_id=2, role="user")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CommandApp]:
    app = CommandApp(Settings(data_dir=tmp_path), "nats://unused", persistence_module="events.store.memory")
    yield app
    app.close()


def test_a_tag_name_is_unique_ignoring_case_until_it_is_renamed_away(app: CommandApp) -> None:
    tag, seq = create_tag(app, ANN, "Cats")
    assert seq == app.event_log.last_sequence() - 1  # the name's claim follows the event
    with pytest.raises(Conflict):
        create_tag(app, BOB, "cats")
    rename_tag(app, ANN, tag.number, "Felines")
    other, _ = create_tag(app, BOB, "cats")
    name = claim(app.settings.subject_prefix, "tagname", "cats", "").subject
    assert app.event_log.read_claim(name) == str(other.number)


def test_only_the_creator_changes_a_tag_and_deleting_frees_its_name(app: CommandApp) -> None:
    tag, _ = create_tag(app, ANN, "dogs")
    with pytest.raises(Forbidden):
        delete_tag(app, BOB, tag.number)
    delete_tag(app, ANN, tag.number)
    again, _ = create_tag(app, BOB, "dogs")
    assert again.number != tag.number


def test_a_repeated_idempotency_key_creates_nothing_more(app: CommandApp) -> None:
    create_tag(app, ANN, "birds", idempotency_key="req-1")
    before = app.event_log.last_sequence()
    with pytest.raises(DuplicateRequest):
        create_tag(app, ANN, "birds", idempotency_key="req-1")
    assert app.event_log.last_sequence() == before
