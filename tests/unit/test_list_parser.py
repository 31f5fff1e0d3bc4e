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


def test_tag_names_are_read_as_stored_names_compare() -> None:
    assert parse("tag=%EF%BC%A3%EF%BC%A1%EF%BC%B4,Cat").conditions[0].values == ("cat",)  # fullwidth CAT, Cat


def test_a_refused_date_quotes_the_value_as_sent() -> None:
    for query_string, sent in (("date=2026++", "'2026++'"), ("date=2026%2B%2B", "'2026++'"),
                               ("date=202213", "'202213'"), ("date=2023~2022", "'2023~2022'")):
        with pytest.raises(Invalid) as caught:
            parse(query_string)
        assert f"date: {sent} is not a date filter" in caught.value.detail, caught.value.detail


@pytest.mark.parametrize(("query_string", "named"), [
    ("date=2026++", "date"), ("date=2026%20%20", "date"), ("date=%202026", "date"), ("date=2026%20~2027", "date"),
    ("date=%D9%A2%D9%A0%D9%A2%D9%A6", "date"),  # Arabic-Indic digits: \\d would take them
    ("sort=%20date-", "sort"), ("sort=date-%20", "sort"), ("sort=date++", "sort"),
    ("public=%20true", "public"), ("public=true%20", "public"), ("user=%201", "user"), ("user=1%20", "user"),
    ("user=1,+2", "user"), ("like=+1", "like"), ("choice=%091", "choice"), ("tag=+7", "tag"), ("tag=cat%20", "tag"),
    ("q=c++", "q"), ("q=%20cat", "q"), ("page=+1", "page"), ("page=%201", "page"), ("page=1%20", "page"),
    ("pageSize=20%20", "pageSize"), ("page_size=%2B5", "page_size"), ("cursor=%20abc", "cursor"),
    ("page=" + "1" * 5000, "page"), ("user=" + "1" * 5000, "user"), ("page=%D9%A1", "page"),
])
def test_stray_whitespace_and_non_plain_digits_are_refused(query_string: str, named: str) -> None:
    """Only one trailing space in `date` and `sort` has a meaning (an unencoded `+`); any other space, a
    leading `+` (which arrives as a space) or digits of another script make a value malformed."""
    assert refused(query_string) == named


def test_status_type_and_base_model_refuse_stray_spaces() -> None:
    for query_string in ("status=%20ready", "type=lora%20", "base_model=SD2+"):
        assert refused(query_string, MODELS) == query_string.partition("=")[0]


def test_one_trailing_space_is_plus_and_inner_spaces_are_text() -> None:
    assert parse("date=2026+").conditions == parse("date=2026%2B").conditions
    assert parse("sort=date+").sort == "date+"
    query = parse("q=blue+sky&tag=blue%20sky")
    assert [c.values for c in query.conditions] == [("blue sky",), ("blue sky",)]
    assert parse("page=01&user=0042").page == 1 and parse("user=0042").conditions[0].values == (42,)


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


def test_bytes_that_are_not_utf8_are_refused_not_searched_for() -> None:
    assert refused("tag=%FF") == "tag"
    assert refused("q=caf%E9") == "q"
    assert parse("q=caf%C3%A9").conditions  # é in UTF-8 is fine
