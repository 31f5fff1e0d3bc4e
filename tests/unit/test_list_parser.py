"""The one list-query parser: what a query string means, and which ones are refused (422 naming the parameter)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from starlette.datastructures import QueryParams

from infra.errors import Invalid
from query.collections import IMAGES, MODELS, TAGS
from query.dates import DayRange, parse_date
from query.filters import CreatedOn, Flag, OwnedBy, Tagged
from query.listing import Collection, Cursor, ListQuery, parse_list


def parse(query_string: str, collection: Collection = IMAGES) -> ListQuery:
    return parse_list(QueryParams(query_string), collection)


def refused(query_string: str, collection: Collection = IMAGES) -> str:
    """The parameter a 422 names."""
    with pytest.raises(Invalid) as caught:
        parse(query_string, collection)
    assert caught.value.status == 422 and caught.value.errors
    loc = caught.value.errors[0]["loc"]
    assert loc[0] == "query"
    return str(loc[1])


def test_no_parameters_mean_the_first_page_of_twenty_newest_first() -> None:
    query = parse("")
    assert (query.page, query.page_size, query.sort, query.conditions, query.cursor) == (1, 20, "date-", (), None)


def test_page_size_has_two_spellings() -> None:
    assert parse("page=3&pageSize=7").page_size == 7
    assert parse("page=3&page_size=100").page_size == 100
    assert parse("page=3&page_size=7").offset == 14


def test_commas_are_alternatives_and_repeats_are_all_required() -> None:
    query = parse("tag=1,2&tag=Cat&user=5&user_id=6,7")
    assert [(c.param, c.values) for c in query.conditions] == [
        ("tag", (1, 2)), ("tag", ("cat",)), ("user", (5,)), ("user_id", (6, 7))]
    assert isinstance(query.conditions[0].filter, Tagged) and isinstance(query.conditions[2].filter, OwnedBy)


def test_public_reads_true_and_false() -> None:
    query = parse("public=true,0&public=FALSE")
    assert [c.values for c in query.conditions] == [(True, False), (False,)]
    assert isinstance(query.conditions[0].filter, Flag)


def test_public_takes_the_spellings_an_upload_takes_in_any_case() -> None:
    query = parse("public=yes,On,1,TRUE&public=no,OFF,0,False")
    assert [c.values for c in query.conditions] == [(True,), (False,)]


def test_an_unencoded_plus_arrives_as_a_space_and_still_means_plus() -> None:
    encoded, raw = parse("date=20220214%2B&sort=date%2B"), parse("date=20220214+&sort=date+")
    assert encoded.conditions == raw.conditions
    assert raw.conditions[0].values == (DayRange(date(2022, 2, 14), None),)
    assert isinstance(raw.conditions[0].filter, CreatedOn)
    assert raw.sort == encoded.sort == "date+"
    assert parse("date=2021+,2019").conditions[0].values == (DayRange(date(2021, 1, 1), None),
                                                             DayRange(date(2019, 1, 1), date(2019, 12, 31)))


@pytest.mark.parametrize(("text", "first", "last"), [
    ("2022", date(2022, 1, 1), date(2022, 12, 31)),
    ("202002", date(2020, 2, 1), date(2020, 2, 29)),
    ("20230131", date(2023, 1, 31), date(2023, 1, 31)),
    ("2022+", date(2022, 1, 1), None),
    ("202302-", None, date(2023, 2, 28)),
    ("2022~2023", date(2022, 1, 1), date(2023, 12, 31)),
    ("202212~20230105", date(2022, 12, 1), date(2023, 1, 5)),
    ("2024~2024", date(2024, 1, 1), date(2024, 12, 31)),
])
def test_dates_are_whole_utc_days(text: str, first: date | None, last: date | None) -> None:
    assert parse_date(text) == DayRange(first, last)


def test_a_day_range_ends_before_the_next_day_starts() -> None:
    day = parse_date("20231231")
    assert (day.start, day.end) == (datetime(2023, 12, 31, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
    assert parse_date("9999-").end is None


@pytest.mark.parametrize("query_string", [
    "date=2022-13", "date=202213", "date=20230229", "date=0000", "date=22", "date=2022~", "date=~2022",
    "date=2023~2022", "date=20220101+-", "date=2022,", "date=abcd", "date=%2B", "date=2022%2B%2B",
])
def test_malformed_dates_are_refused(query_string: str) -> None:
    assert refused(query_string) == "date"


@pytest.mark.parametrize(("query_string", "named"), [
    ("bogus=1", "bogus"), ("page=0", "page"), ("page=x", "page"), ("page=1&page=2", "page"),
    ("pageSize=101", "pageSize"), ("page_size=0", "page_size"), ("page_size=5&pageSize=5", "pageSize"),
    ("sort=name", "sort"), ("sort=date-&sort=date%2B", "sort"), ("user=abc", "user"), ("user=0", "user"),
    ("user_id=9007199254740992", "user_id"), ("user=1,,2", "user"), ("tag=", "tag"), ("public=maybe", "public"),
    ("choice=-1", "choice"), ("like=me", "like"), ("q=%00", "q"), ("q=" + "x" * 201, "q"),
    ("status=ready", "status"), ("cursor=zzz", "cursor"), ("page=2&cursor=abc", "cursor"),
    ("user=" + ",".join(["1"] * 101), "user"),
])
def test_unknown_parameters_and_malformed_values_are_refused_by_name(query_string: str, named: str) -> None:
    assert refused(query_string) == named


def test_each_collection_accepts_its_own_parameters() -> None:
    assert refused("like=1", MODELS) == "like"
    assert refused("sort=likes", MODELS) == "sort"
    assert refused("public=true", TAGS) == "public"
    assert parse("status=READY&type=lora,ti&base_model=sd1.5", MODELS).conditions[0].values == ("ready",)
    assert parse("base_model=sd1.5", MODELS).conditions[0].values == ("SD1.5",)
    assert refused("type=vae", MODELS) == "type"


def test_a_cursor_belongs_to_its_sort_and_carries_its_page() -> None:
    cursor = Cursor(page=4, sort="likes", keys=(3, datetime(2024, 5, 1, tzinfo=UTC), 17))
    query = parse(f"sort=likes&page_size=5&cursor={cursor.encode()}")
    assert (query.page, query.cursor) == (4, cursor)
    assert refused(f"cursor={cursor.encode()}") == "cursor"  # made for sort=likes, used with date-
    naive = Cursor(page=2, sort="date-", keys=(datetime(2024, 5, 1), 17)).encode()
    assert refused(f"cursor={naive}") == "cursor"
