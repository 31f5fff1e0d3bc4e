"""The list engine against the plain-Python reference (tests/reference_lists.py), on real PostgreSQL.

Hypothesis makes galleries — users, tags, images on dates across years (clustered on month and year edges),
likes, featured collections — writes them straight into the read-model tables made by the real projectors'
DDL (read models are disposable), then changes and deletes some images so the counters' triggers run every path.
Random queries, rendered as a client would write them, must then give exactly the reference's ids, in its
order, on every page and along the cursor, with the same `next`, and a `total` that is exact when it says so
and otherwise a true lower bound.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool
from starlette.datastructures import QueryParams

from infra.actor import Actor
from projectors.postgres.images import ImagesProjector
from projectors.postgres.tags import TagsProjector
from query.collections import IMAGES
from query.db import make_pool
from query.engine import COUNT_CAP, list_page
from query.id_sets import SMALL_SET
from query.listing import parse_list
from tests.reference_lists import (
    Caller,
    Choice,
    DateSpec,
    Gallery,
    Image,
    ImageQuery,
    Tag,
    expected_list,
    expected_page,
    to_query_string,
)

EDGE_DAYS = [date(2019, 12, 31), date(2020, 1, 1), date(2020, 2, 29), date(2020, 3, 1), date(2021, 6, 15),
             date(2021, 6, 16), date(2023, 12, 31)]
EDGE_TIMES = [time(0), time(12), time(23, 59, 59, 999999)]

instants = st.one_of(
    st.builds(lambda d, t: datetime.combine(d, t, UTC), st.sampled_from(EDGE_DAYS), st.sampled_from(EDGE_TIMES)),
    st.datetimes(min_value=datetime(2018, 1, 1), max_value=datetime(2026, 12, 31)).map(
        lambda d: d.replace(tzinfo=UTC)),
)
users = st.integers(1, 4)
tag_ids = st.lists(st.integers(1, 7), max_size=3, unique=True)  # 7 has no tag row: a tag since deleted
texts = st.text(alphabet="abAB_% ", max_size=6)
search = st.text(alphabet="abAB_%", min_size=1, max_size=3)


@st.composite
def galleries(draw: st.DrawFn) -> tuple[Gallery, list[Image], list[int]]:
    """A gallery, the images as first written (some change later), and the ids deleted afterwards."""
    names = draw(st.lists(st.text(alphabet="abcXY", min_size=1, max_size=3), max_size=6,
                          unique_by=lambda n: n.lower()))
    tags = [Tag(id=n, name=name) for n, name in enumerate(names, 1)]
    ids = draw(st.lists(st.integers(1, 10_000), min_size=2, max_size=40, unique=True))
    first = [Image(id=i, user_id=draw(users), public=draw(st.booleans()), created_at=draw(instants),
                   tag_ids=draw(tag_ids), name=draw(texts), prompt=draw(texts)) for i in ids]
    final = []
    for image in first:
        if draw(st.integers(0, 2)) == 0:
            image = replace(image, public=draw(st.booleans()), tag_ids=draw(tag_ids))
        final.append(image)
    deleted = [i.id for i in final if draw(st.integers(0, 7)) == 0]
    live = [i for i in final if i.id not in deleted]
    live_ids = [i.id for i in live]
    likes = set(draw(st.lists(st.tuples(users, st.sampled_from(live_ids)), max_size=30))) if live else set()
    choices = [Choice(id=n, user_id=draw(users), public=draw(st.booleans()),
                      image_ids=draw(st.lists(st.sampled_from(live_ids), unique=True)) if live else [])
               for n in range(1, draw(st.sampled_from([0, 1, 2, 3, 3])) + 1)]
    return Gallery(images=live, tags=tags, likes=likes, choices=choices), first, deleted


def periods(gallery: Gallery) -> st.SearchStrategy[str]:
    """YYYY, YYYYMM or YYYYMMDD of the gallery's own days or their neighbours (the edges), edge days, any day."""
    near = sorted({i.created_at.date() + timedelta(days=d) for i in gallery.images for d in (-1, 0, 1)})
    own = st.sampled_from(near) if near else st.sampled_from(EDGE_DAYS)
    day = st.one_of(own, own, st.sampled_from(EDGE_DAYS),
                    st.dates(min_value=date(2018, 1, 1), max_value=date(2026, 12, 31)))
    return st.builds(lambda d, n: d.strftime("%Y%m%d")[:n], day, st.sampled_from([4, 6, 8]))


@st.composite
def date_specs(draw: st.DrawFn, gallery: Gallery) -> DateSpec:
    form = draw(st.sampled_from(["on", "after", "before", "between"]))
    a, b = draw(periods(gallery)), draw(periods(gallery))
    if form == "between" and a.ljust(8, "0") > b.ljust(8, "9"):
        a, b = b, a
    return DateSpec(form, a, b)


def groups(values: st.SearchStrategy[Any], single: bool = False) -> st.SearchStrategy[list[list[Any]]]:
    return st.lists(st.lists(values, min_size=1, max_size=1 if single else 3), min_size=1, max_size=2)


@st.composite
def image_queries(draw: st.DrawFn, gallery: Gallery, families: tuple[str, ...] | None = None) -> ImageQuery:
    """Without `families`: half the queries have the shape the counters answer (one owner, one tag, public,
    dates), the others a few filters of any kind. With them: filters of those families only."""
    known = [t.name for t in gallery.tags]
    tag_ref = st.one_of(st.integers(1, 8), st.sampled_from(known).map(lambda n: n.swapcase()) if known
                        else st.just("nosuchtag"), st.just("nosuchtag"))
    countable = families is None and draw(st.booleans())
    if families is None:
        kinds = ["users", "tags", "public", "dates"] + ([] if countable else ["q", "choices", "likes"])
        chosen = draw(st.sets(st.sampled_from(kinds), max_size=3 if countable else 2))
    else:
        chosen = draw(st.sets(st.sampled_from(families), min_size=1))
    strategies: dict[str, st.SearchStrategy[list[list[Any]]]] = {
        "users": groups(users, single=countable), "tags": groups(tag_ref, single=countable),
        "public": groups(st.booleans()), "dates": groups(date_specs(gallery)),
        "q": groups(search), "choices": groups(st.integers(1, 4)), "likes": groups(users),
    }
    sort = draw(st.sampled_from(["date-", "date+", "likes"]))
    return ImageQuery(sort=sort, **{kind: draw(strategies[kind]) for kind in chosen})


callers = st.sampled_from([Caller(), Caller(1), Caller(2), Caller(3), Caller(99, admin=True)])


def actor_of(caller: Caller) -> Actor:
    if caller.admin:
        return Actor(caller.user_id, "admin")
    return Actor(caller.user_id, "user") if caller.user_id is not None else Actor()


def write(url: str, gallery: Gallery, first: list[Image], deleted: list[int]) -> None:
    """The rows the projectors would hold: images written, some changed, some deleted (with their likes and
    items, as the images projector does), then likes and collections of the live ones."""
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE rm.images, rm.image_counts, rm.image_likes, rm.choices, rm.choice_items, rm.tags")
        conn.cursor().executemany(
            "INSERT INTO rm.tags (id, name, user_id, created_at, updated_at, version) VALUES (%s, %s, 1, now(),"
            " now(), 1)", [(t.id, t.name) for t in gallery.tags])
        conn.cursor().executemany(
            "INSERT INTO rm.images (id, user_id, name, prompt, width, height, blob_key, content_type, public,"
            " tag_ids, created_at, updated_at, version) VALUES (%s, %s, %s, %s, 1, 1, 'k', 'image/png', %s, %s, %s,"
            " %s, 1)",
            [(i.id, i.user_id, i.name, i.prompt, i.public, i.tag_ids, i.created_at, i.created_at) for i in first])
        live = {i.id: i for i in gallery.images}
        for image in first:
            now = live.get(image.id)
            if now is not None and (now.public, now.tag_ids) != (image.public, image.tag_ids):
                conn.execute("UPDATE rm.images SET public = %s, tag_ids = %s WHERE id = %s",
                             (now.public, now.tag_ids, image.id))
        if deleted:
            conn.execute("DELETE FROM rm.images WHERE id = ANY(%s)", (deleted,))
        conn.cursor().executemany(
            "INSERT INTO rm.image_likes (user_id, image_id, created_at) VALUES (%s, %s, now())", sorted(gallery.likes))
        conn.execute("UPDATE rm.images i SET likes = (SELECT count(*) FROM rm.image_likes l WHERE l.image_id = i.id)")
        for c in gallery.choices:
            conn.execute("INSERT INTO rm.choices (id, user_id, name, public, created_at, updated_at, version)"
                         " VALUES (%s, %s, 'c', %s, now(), now(), 1)", (c.id, c.user_id, c.public))
            conn.cursor().executemany("INSERT INTO rm.choice_items (choice_id, image_id, weight) VALUES (%s, %s, 1)",
                                      [(c.id, i) for i in c.image_ids])


class Engine:
    """The engine as the images route calls it, on one event loop for the whole test."""

    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        self.pool: AsyncConnectionPool = make_pool(url, max_size=2)
        self.runner.run(self.pool.open(wait=True))

    def page(self, query_string: str, caller: Caller, cap: int, small_set: int = SMALL_SET) -> dict[str, Any]:
        query = parse_list(QueryParams(query_string), IMAGES)
        answer = self.runner.run(list_page(self.pool, IMAGES, query, actor_of(caller), columns="i.id",
                                           count_cap=cap, small_set=small_set))
        answer["ids"] = [row["id"] for row in answer.pop("list")]
        return answer

    def close(self) -> None:
        self.runner.run(self.pool.close())
        self.runner.close()


@pytest.fixture(scope="module")
def engine_db(postgres_server: Any) -> Iterator[tuple[str, Engine]]:
    url = postgres_server.create_database(f"lists_prop_{random.randrange(10**9)}")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE SCHEMA rm")
        for projector in (TagsProjector(), ImagesProjector()):
            for statement in projector.ddl():
                conn.execute(projector.sql(statement, "rm"))  # type: ignore[arg-type]
    engine = Engine(url)
    yield url, engine
    engine.close()


def expected_counts(gallery: Gallery) -> list[tuple[int, int, date, bool, int]]:
    """rm.image_counts recounted from the images: per UTC day and public flag, for the whole gallery (0, 0),
    each owner (u, 0), each tag (0, t) and each owner and tag (u, t); no zero rows."""
    counts: Counter[tuple[int, int, date, bool]] = Counter()
    for i in gallery.images:
        for user in (0, i.user_id):
            for tag in (0, *set(i.tag_ids)):
                counts[(user, tag, i.created_at.date(), i.public)] += 1
    return sorted((*key, n) for key, n in counts.items())


def check_total(answer: dict[str, Any], full: list[int], cap: int) -> None:
    if answer["total_exact"]:
        assert answer["total"] == len(full)
    else:  # a lower bound, given only past the cap
        assert len(full) > cap and cap <= answer["total"] <= len(full)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), world=galleries())
def test_every_page_and_the_cursor_walk_match_the_reference(
    engine_db: tuple[str, Engine], data: st.DataObject, world: tuple[Gallery, list[Image], list[int]]
) -> None:
    url, engine = engine_db
    gallery, first, deleted = world
    write(url, gallery, first, deleted)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT * FROM rm.image_counts ORDER BY 1, 2, 3, 4").fetchall() == expected_counts(gallery)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for query in data.draw(st.lists(image_queries(gallery), min_size=1, max_size=6)):
        caller, size = data.draw(callers), data.draw(st.integers(1, 7))
        cap = data.draw(st.sampled_from([COUNT_CAP, 2]))
        small_set = data.draw(st.sampled_from([SMALL_SET, 1]))  # 1: most like and collection sets are "large"
        full = expected_list(gallery, caller, query)
        for page in range(1, len(full) // size + 3):
            answer = engine.page(to_query_string(query, rng, page, size), caller, cap, small_set)
            ids, more = expected_page(full, page, size)
            assert (answer["ids"], answer["next"]) == (ids, more), (page, to_query_string(query, rng, page, size))
            assert (answer["page"], answer["page_size"]) == (page, size)
            check_total(answer, full, cap)
        walked, page, cursor = [], 1, None
        while True:
            base = to_query_string(query, rng, None, size)
            answer = engine.page(base + (f"&cursor={cursor}" if cursor else ""), caller, cap, small_set)
            assert answer["page"] == page
            check_total(answer, full, cap)
            walked += answer["ids"]
            if not answer["next"]:
                break
            page, cursor = page + 1, answer["cursor"]
        assert walked == full


@pytest.mark.parametrize("families", [("dates",), ("choices", "likes"), ("users", "tags", "public"), ("q",)])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), world=galleries())
def test_each_filter_family_alone_matches_the_reference(
    engine_db: tuple[str, Engine], families: tuple[str, ...], data: st.DataObject,
    world: tuple[Gallery, list[Image], list[int]]
) -> None:
    """Many queries of one family of filters on each gallery, each answered whole on one page."""
    url, engine = engine_db
    gallery, first, deleted = world
    write(url, gallery, first, deleted)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for query in data.draw(st.lists(image_queries(gallery, families), min_size=5, max_size=15)):
        caller, small_set = data.draw(callers), data.draw(st.sampled_from([SMALL_SET, 1]))
        full = expected_list(gallery, caller, query)
        answer = engine.page(to_query_string(query, rng, 1, 100), caller, COUNT_CAP, small_set)
        assert (answer["ids"], answer["total"], answer["next"]) == (full, len(full), False), \
            (caller, to_query_string(query, rng, 1, 100))
