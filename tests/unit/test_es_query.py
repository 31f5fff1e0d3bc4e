"""The Elasticsearch request bodies of the image list (query/search/es_query.py), checked without a server: what
each filter becomes, the visibility rule, and the cursor keys' round trip."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.datastructures import QueryParams

from infra.actor import Actor
from query.collections import IMAGES
from query.listing import parse_list
from query.search.es_query import cursor_keys, filter_query, from_ns, ns, search_after


def _filters(query_string: str, actor: Actor, sets: dict[int, list[int]] | None = None) -> list[dict]:
    query = parse_list(QueryParams(query_string), IMAGES)
    return filter_query(query.conditions, actor, sets or {})["bool"]["filter"]


def test_filters_become_term_range_and_wildcard_clauses() -> None:
    clauses = _filters("user=5,6&tag=3&public=false&date=2024~2024&q=Red%2A", Actor())
    assert clauses[0] == {"terms": {"user_id": [5, 6]}}
    assert clauses[1] == {"terms": {"tag_ids": [3]}}
    assert clauses[2] == {"term": {"public": False}}
    start, end = ns(datetime(2024, 1, 1, tzinfo=UTC)), ns(datetime(2025, 1, 1, tzinfo=UTC))
    assert clauses[3] == {"range": {"created_ns": {"gte": start, "lt": end}}}
    assert clauses[4]["bool"]["should"][1] == {"wildcard": {"prompt_raw": {"value": "*red\\**",
                                                                           "case_insensitive": True}}}
    assert clauses[-1] == {"term": {"public": True}}  # anonymous: public only


def test_visibility_follows_the_caller() -> None:
    assert _filters("", Actor(7, "admin")) == []
    assert _filters("", Actor(7, "user")) == [{"bool": {"should": [{"term": {"public": True}},
                                                                   {"term": {"user_id": 7}}],
                                                        "minimum_should_match": 1}}]


def test_like_and_choice_filters_use_the_id_lists_read_from_postgresql() -> None:
    assert _filters("like=4", Actor(7, "admin"), {0: [11, 12]}) == [{"terms": {"id": [11, 12]}}]


def test_cursor_keys_round_trip_to_the_microsecond() -> None:
    moment = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    assert from_ns(ns(moment)) == moment
    assert cursor_keys("date-", search_after("date-", (moment, 42))) == (moment, 42)
    assert cursor_keys("likes", search_after("likes", (3, moment, 42))) == (3, moment, 42)
