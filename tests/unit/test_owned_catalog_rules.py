"""Pure domain rules of params, datasets and models: no server."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeVar
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate

from command.datasets import Dataset
from command.items import _url_problem
from command.models import Model, check_patch_fields, clean_trigger_words
from command.owned import clean_name, owner_view
from command.params import MAX_DATA_BYTES, MAX_DATA_DEPTH, Param, check_param_data
from events.datasets import DatasetCreated
from events.ids import aggregate_uuid
from events.models import ModelCreated
from events.params import ParamCreated, ParamDataReplaced, ParamRenamed
from infra.actor import Actor
from infra.errors import Conflict, Invalid, TooLarge
from infra.urls import AllowList

A = TypeVar("A", bound=Aggregate)


def replay(kind: type[A], events: Iterable[CanMutateAggregate[UUID]]) -> A:
    """The aggregate the events build from nothing, which must be a `kind`."""
    aggregate: A | None = None
    for event in events:
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, kind)
    return aggregate


def new_param() -> Param:
    return Param._create(ParamCreated, id=aggregate_uuid("param", 11), name="p", data={"steps": 20}, public=False,
                         user_id=5)


def new_model(status: str = "initial") -> Model:
    return Model._create(ModelCreated, id=aggregate_uuid("model", 12), name="m", type="lora", base_model="SD1.5",
                         source=None, trigger_words="", tag_ids=[1, 2], public=False, user_id=5,
                         data={"oss": [], "images": [3], "choices": []}, status=status)


def test_a_change_records_only_the_fields_that_really_change() -> None:
    param = new_param()
    param.collect_events()
    param.change(name="p", data={"steps": 30}, public=None)
    assert [type(e) for e in param.collect_events()] == [ParamDataReplaced]
    param.change(name="q", data={"steps": 30}, public=False)
    assert [type(e) for e in param.collect_events()] == [ParamRenamed]


def test_replaying_the_events_gives_the_same_state() -> None:
    param = new_param()
    param.change(name="renamed", data={"a": [1, {"b": None}]}, public=True)
    param.delete()
    again = replay(Param, param.collect_events())
    assert isinstance(again, Param)
    assert (again.name, again.data, again.public, again.deleted) == ("renamed", {"a": [1, {"b": None}]}, True, True)
    dataset = Dataset._create(DatasetCreated, id=aggregate_uuid("dataset", 13), name="d",
                              items={"oss": [], "images": [], "choices": []}, public=False, user_id=5)
    dataset.change(name=None, items={"oss": ["https://x.test/a.png"], "images": [], "choices": []}, public=None)
    assert replay(Dataset, dataset.collect_events()).items["oss"] == ["https://x.test/a.png"]
    model = new_model()
    model.retag([2])
    model.choose_cover(7)
    model.choose_cover(None)
    again_model = replay(Model, model.collect_events())
    assert isinstance(again_model, Model)
    assert (again_model.tag_ids, again_model.image_id, again_model.status) == ([2], None, "initial")


def nested(depth: int) -> dict:
    data: dict = {}
    for _ in range(depth - 1):
        data = {"x": data}
    return data


def test_param_data_limits() -> None:
    assert check_param_data(nested(MAX_DATA_DEPTH)) == nested(MAX_DATA_DEPTH)
    with pytest.raises(Invalid, match="deeper"):
        check_param_data(nested(MAX_DATA_DEPTH + 1))
    with pytest.raises(Invalid, match="deeper"):
        check_param_data({"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]})
    with pytest.raises(TooLarge):
        check_param_data({"blob": "x" * MAX_DATA_BYTES})
    check_param_data({"blob": "x" * (MAX_DATA_BYTES - 20)})


@pytest.mark.parametrize("bad", [{"x": math.nan}, {"x": [math.inf]}, {"x": "a\x00b"}, {"a\x00": 1},
                                 {"x": "\ud800"}, {"\udfff": 1}])
def test_param_data_refuses_what_the_read_model_cannot_store(bad: dict) -> None:
    with pytest.raises(Invalid):
        check_param_data(bad)


@pytest.mark.parametrize("status", ["ready", "waiting", "running"])
def test_a_training_model_is_locked(status: str) -> None:
    with pytest.raises(Conflict, match=status):
        new_model(status).check_unlocked()
    new_model("initial").check_unlocked()
    new_model("error").check_unlocked()
    new_model("success").check_unlocked()


def test_status_takes_ready_or_a_lone_cancel_and_progress_and_model_path_are_read_only() -> None:
    for status in ("initial", "waiting", "running", "success", "error", "READY", None):
        with pytest.raises(Invalid, match=r"ready .* or canceled"):
            check_patch_fields({"status": status})
    with pytest.raises(Invalid, match="alone"):
        check_patch_fields({"status": "canceled", "name": "x"})
    for field in ("progress", "model_path", "error", "task_id"):
        with pytest.raises(Invalid, match="read-only"):
            check_patch_fields({field: 1})
    check_patch_fields({"name": "x", "image": None, "status": "ready"})
    check_patch_fields({"status": "canceled"})


@pytest.mark.parametrize("url", ["https://example.com/a.png", "http://93.184.216.34:9000/bucket/x.jpg",
                                 "/api/blobs/ab/cd/abcd" + "0" * 60 + ".png"])
def test_accepted_urls(url: str) -> None:
    assert _url_problem(url) is None


def test_a_private_host_passes_only_when_allowed() -> None:
    assert _url_problem("http://10.0.0.1:9000/bucket/x.jpg") is not None
    assert _url_problem("http://10.0.0.1:9000/bucket/x.jpg", AllowList.parse(["10.0.0.0/8"])) is None


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "javascript:alert(1)",
                                 "https:///nohost", "example.com/a.png", "/api/blobs/../../etc/passwd",
                                 "/etc/passwd", "https://exa mple.com/", "https://example.com/\x00", "",
                                 "http://[::1", "http://10.0.0.1:9000/bucket/x.jpg", "http://169.254.169.254/"])
def test_refused_urls(url: str) -> None:
    assert _url_problem(url) is not None


def test_names_and_trigger_words_are_cleaned_or_refused() -> None:
    assert clean_name("  my set ") == "my set"
    for bad in ("", "   ", "a\nb", "a\x00", "\ud800", "x" * 201):
        with pytest.raises(Invalid):
            clean_name(bad)
    assert clean_trigger_words(" sks dog,\nstyle ") == "sks dog,\nstyle"
    for bad in ("a\x00", "\x07", "\udc00"):
        with pytest.raises(Invalid):
            clean_trigger_words(bad)


def test_an_admin_edits_with_the_owners_eyes() -> None:
    admin = Actor(user_id=1, role="admin")
    assert owner_view(admin, 5) == Actor(user_id=5, role="user")
    owner = Actor(user_id=5, role="user", session_id=9)
    assert owner_view(owner, 5) is owner
