"""Aggregates apply their events through a plain table by event class, on every Python the README names.

Python 3.13.0's `functools.singledispatchmethod` cached its bound dispatcher per instance in a weak dictionary,
which hashes the instance; eventsourcing's aggregates raise NotImplementedError from `__hash__`, so every write
failed there. The first test runs real aggregate changes under that behaviour, on whatever Python runs it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

import pytest

import command
import events
from command.aggregate import NumberedAggregate
from command.likes import Likes
from events.base import Changed, Deleted, EventHandlers
from events.ids import aggregate_uuid
from events.likes import LikesStarted
from tests.unit.test_catalog_aggregates import new_image
from tests.unit.test_owned_catalog_rules import new_model, new_param, replay


def _hashing_get(original: Any) -> Any:
    def __get__(self: Any, obj: Any, cls: Any = None) -> Any:
        if obj is not None:
            hash(obj)  # what 3.13.0's per-instance weak cache does first
        return original(self, obj, cls)
    return __get__


@pytest.fixture
def python_3_13_0(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(functools.singledispatchmethod, "__get__",
                        _hashing_get(functools.singledispatchmethod.__get__))


def test_aggregates_apply_events_where_a_method_dispatcher_would_hash_them(python_3_13_0: None) -> None:
    with pytest.raises(NotImplementedError):
        hash(new_param())  # eventsourcing's aggregates are not hashable: the premise of the test
    image = new_image()
    image.change("dusk", [3], False)
    image.delete()
    assert (image.name, image.tag_ids, image.public, image.deleted) == ("dusk", [3], False, True)
    param = new_param()
    param.change(name="q", data={"steps": 1}, public=True)
    assert replay(type(param), param.collect_events()).data == {"steps": 1}
    model = new_model()
    model.retag([9])
    assert replay(type(model), model.collect_events()).tag_ids == [9]
    likes = Likes._create(LikesStarted, id=aggregate_uuid("likes", 7), user_id=7)
    likes.like(5)
    assert likes.image_ids == {5}


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set(cls.__subclasses__())
    return found.union(*(_subclasses(sub) for sub in found))


def _import_all(package: Any) -> None:
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)


def test_every_event_that_changes_an_aggregate_has_exactly_one_handler() -> None:
    _import_all(events)
    _import_all(command)
    aggregates = [a for a in _subclasses(NumberedAggregate) | {Likes} if "WHEN" in vars(a)]
    handled: dict[type, list[str]] = {}
    for aggregate in aggregates:
        table: EventHandlers = vars(aggregate)["WHEN"]
        for event_class, handler in table.items():
            assert callable(handler)
            handled.setdefault(event_class, []).append(aggregate.__name__)
    concrete = {e for e in _subclasses(Changed) if e is not Deleted and e.__module__.startswith("events.")}
    # one catch-all is allowed: a runner's `server` aggregate ignores report kinds a newer runner may add
    assert handled.pop(Changed, ["Server"]) == ["Server"]
    assert set(handled) == concrete
    assert all(len(owners) == 1 for owners in handled.values()), handled


def test_an_event_without_a_handler_is_named() -> None:
    class Unknown(Changed):
        pass

    with pytest.raises(NotImplementedError, match="Image has no handler for Unknown"):
        Unknown.__new__(Unknown).apply(new_image())
