"""`status=` of the servers list, without a server: read by the one list parser (any case, a union of values, 422
for anything else), the heartbeats joined in by the route, and the SQL each status becomes (the same rule as
infra/schemas_servers.live_status: offline without a heartbeat, else draining by the log, else busy or online)."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from events.heartbeats import Heartbeat
from infra.errors import Invalid
from query.collections import SERVERS
from query.engine import condition_sql
from query.filters import LiveStatus
from query.list_docs import list_parameters
from query.listing import parse_list
from query.routes.servers import with_heartbeats


def test_statuses_are_read_in_any_case_as_a_union() -> None:
    query = parse_list(QueryParams("status=Online,BUSY,online&q=gpu"), SERVERS)
    status = next(c for c in query.conditions if c.param == "status")
    assert status.values == ("online", "busy") and isinstance(status.filter, LiveStatus)
    assert status.filter.alive is None  # not joined yet


@pytest.mark.parametrize("value", ["asleep", "online,asleep", "", "online,,busy", " online"])
def test_anything_but_a_status_is_refused_naming_the_parameter(value: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_list(QueryParams([("status", value)]), SERVERS)
    assert caught.value.status == 422 and caught.value.errors
    assert caught.value.errors[0]["loc"] == ["query", "status"]


def test_the_route_joins_the_heartbeats_and_each_status_becomes_its_rule() -> None:
    beats = {1: Heartbeat(1, "online"), 2: Heartbeat(2, "busy", [9]), 3: Heartbeat(3, "draining")}
    query = with_heartbeats(parse_list(QueryParams("status=offline,draining,busy,online&date=2024"), SERVERS), beats)
    date, status = query.conditions[1], query.conditions[0]
    assert status.param == "status" and date.param == "date"
    assert status.filter == LiveStatus(alive=frozenset({1, 2, 3}), busy=frozenset({2}))
    sql, params = condition_sql(status.filter, status.values, "v")
    assert sql == ("NOT (v.id = ANY(%s::bigint[])) OR (v.draining AND v.id = ANY(%s::bigint[]))"
                   " OR (NOT v.draining AND v.id = ANY(%s::bigint[])) OR (NOT v.draining AND v.id = ANY(%s::bigint[]))")
    assert params == [[1, 2, 3], [1, 2, 3], [2], [1, 3]]


def test_a_status_without_the_heartbeats_joined_in_has_no_sql() -> None:
    with pytest.raises(TypeError, match="heartbeats joined in"):
        condition_sql(LiveStatus(), ("online",), "v")


def test_the_parameter_is_documented_with_its_values() -> None:
    documented = {p["name"]: p for p in list_parameters(SERVERS)["parameters"]}
    assert documented["status"]["description"].startswith("One of: online, busy, draining, offline.")
