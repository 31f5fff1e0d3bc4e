"""One contract for every image search adapter (query/search/): the plain-Python reference of the lists
(tests/reference_lists.py) decides which ids each page holds, in which order, with which `total` and `next`, along
pages and along the cursor; and a ranked list (similar=) holds every selected image once, the query image left
out, the nearest first in score order.

PostgreSQL runs everywhere. Elasticsearch runs only where AIDRAW_ELASTICSEARCH_URL points at a real server
(none can be installed on the development machines, and it is never faked): elsewhere its cases are skipped
with that reason. The Elasticsearch adapter reads tags, likes and collections from PostgreSQL, so both get the
same gallery; its index is written here with the document shape of infra/search_index.py.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.datastructures import QueryParams

from infra.embeddings import DIMS, query_vector, vector_text
from infra.errors import NotFound
from projectors.postgres.images import ImagesProjector
from projectors.postgres.tags import TagsProjector
from query.collections import IMAGES
from query.db import make_pool
from query.listing import parse_list
from query.ranked import Ranking
from query.recommend import image_ranking
from query.search.es_query import ns
from query.search.postgres import PostgresImageSearch
from query.search.protocol import ImageSearch
from tests.integration.test_list_engine_properties import actor_of, callers, galleries, image_queries, write
from tests.reference_lists import Caller, Gallery, Image, can_see, expected_list, expected_page, to_query_string

ES_URL = os.environ.get("AIDRAW_ELASTICSEARCH_URL", "")
NO_ES = "no Elasticsearch server: set AIDRAW_ELASTICSEARCH_URL to a real one (none can be installed here)"


def vector_of(image_id: int) -> list[float]:
    """A fixed pseudo-random vector per image (scores differ, so the nearest order is well defined)."""
    rng = random.Random(image_id)
    return [round(rng.uniform(-1, 1), 6) for _ in range(DIMS)]


def score(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


class Adapter:
    """An adapter under test, on one event loop, over a database that mirrors the gallery."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url
        self.runner = asyncio.Runner()
        self.pool: AsyncConnectionPool = make_pool(url, max_size=2)
        self.runner.run(self.pool.open(wait=True))
        self.client: Any = None
        self.search: ImageSearch
        if kind == "postgres":
            self.search = PostgresImageSearch(self.pool, nearest=1000)
        else:
            from infra.search_index import async_client
            from query.search.elasticsearch import ElasticsearchImageSearch

            self.client = async_client(ES_URL)
            self.index = f"aidraw-contract-{random.randrange(10**9)}"
            self.search = ElasticsearchImageSearch(self.client, self.index, self.pool, nearest=1000)

    def load(self, gallery: Gallery, first: list[Image], deleted: list[int]) -> None:
        write(self.url, gallery, first, deleted)
        with psycopg.connect(self.url) as conn:
            for image in gallery.images:
                conn.execute("UPDATE rm.images SET embedding = %s::vector WHERE id = %s",
                             (vector_text(vector_of(image.id)), image.id))
        if self.client is not None:
            self.runner.run(self._index(gallery))

    async def _index(self, gallery: Gallery) -> None:
        from infra.embeddings import PIXELS
        from infra.search_index import ensure_index

        if await self.client.indices.exists(index=self.index):
            await self.client.indices.delete(index=self.index)
        await ensure_index(self.client, self.index, PIXELS)
        for image in gallery.images:
            await self.client.index(index=self.index, id=str(image.id), version=1, version_type="external",
                                    document={"id": image.id, "user_id": image.user_id, "public": image.public,
                                              "tag_ids": image.tag_ids, "likes": gallery.likes_of(image),
                                              "created_ns": ns(image.created_at), "name_raw": image.name,
                                              "prompt_raw": image.prompt, "prompt": image.prompt,
                                              "embedding_version": 1, "embedding": vector_of(image.id)})
        await self.client.indices.refresh(index=self.index)

    def page(self, query_string: str, caller: Caller, ranking: Ranking | None = None,
             columns: str | None = None) -> Any:
        query = parse_list(QueryParams(query_string), IMAGES)
        return self.runner.run(self.search.page(query, actor_of(caller), ranking, columns))

    def close(self) -> None:
        if self.client is not None:
            self.runner.run(self.client.indices.delete(index=self.index, ignore_unavailable=True))
            self.runner.run(self.client.close())
        self.runner.run(self.pool.close())
        self.runner.close()


@pytest.fixture(scope="module", params=["postgres", pytest.param("elasticsearch", marks=pytest.mark.skipif(
    not ES_URL, reason=NO_ES))])
def adapter(request: pytest.FixtureRequest, postgres_server: Any) -> Iterator[Adapter]:
    url = postgres_server.create_database(f"search_contract_{random.randrange(10**9)}")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE SCHEMA rm")
        for projector in (TagsProjector(), ImagesProjector()):
            for statement in [*projector.ddl(), *projector.deferred_ddl()]:
                conn.execute(projector.sql(statement, "rm"))  # type: ignore[arg-type]
    made = Adapter(request.param, url)
    yield made
    made.close()


SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=40, deadline=None, suppress_health_check=SUPPRESS)
@given(data=st.data(), world=galleries())
def test_pages_and_the_cursor_walk_match_the_reference(adapter: Adapter, data: st.DataObject,
                                                       world: tuple[Gallery, list[Image], list[int]]) -> None:
    gallery, first, deleted = world
    adapter.load(gallery, first, deleted)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for query in data.draw(st.lists(image_queries(gallery), min_size=1, max_size=4)):
        caller, size = data.draw(callers), data.draw(st.integers(1, 7))
        full = expected_list(gallery, caller, query)
        for page in range(1, len(full) // size + 3):
            found = adapter.page(to_query_string(query, rng, page, size), caller)
            assert (found.ids, found.next) == expected_page(full, page, size), to_query_string(query, rng, page, size)
            assert found.total == len(full) and found.total_exact  # small galleries: always exact
        walked, cursor = [], None
        while True:
            found = adapter.page(to_query_string(query, rng, None, size) + (f"&cursor={cursor}" if cursor else ""),
                                 caller)
            walked += found.ids
            if not found.next:
                break
            cursor = found.cursor
        assert walked == full


@settings(max_examples=30, deadline=None, suppress_health_check=SUPPRESS)
@given(data=st.data(), world=galleries())
def test_a_ranked_list_holds_every_selected_image_once_nearest_first(
        adapter: Adapter, data: st.DataObject, world: tuple[Gallery, list[Image], list[int]]) -> None:
    gallery, first, deleted = world
    if not gallery.images:
        return
    adapter.load(gallery, first, deleted)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    origin = data.draw(st.sampled_from(gallery.images))
    vector = vector_of(origin.id)
    for query in data.draw(st.lists(image_queries(gallery), min_size=1, max_size=3)):
        caller = data.draw(callers)
        full = [n for n in expected_list(gallery, caller, query) if n != origin.id]
        best = sorted(full, key=lambda n: -score(vector, vector_of(n)))
        found = adapter.page(to_query_string(query, rng, 1, 100), caller,
                             Ranking(vector, "similar", leave_out=origin.id))
        assert (found.ids, found.total, found.next, found.sort_applied) == (best, len(full), False, "similar")
        size, walked = data.draw(st.integers(1, 4)), []
        for page in range(1, len(best) // size + 2):
            found = adapter.page(to_query_string(query, rng, page, size), caller,
                                 Ranking(vector, "similar", leave_out=origin.id))
            assert found.next == (page * size < len(best))
            walked += found.ids
        assert walked == best


@settings(max_examples=30, deadline=None, suppress_health_check=SUPPRESS)
@given(data=st.data(), world=galleries())
def test_similar_to_an_image_ranks_by_its_own_vector_which_the_adapter_reads(
        adapter: Adapter, data: st.DataObject, world: tuple[Gallery, list[Image], list[int]]) -> None:
    """`Ranking.similar(ID)` (what `similar=ID` hands the adapter): ranked by that image's query vector
    (infra/embeddings.py), the image left out of the list and the total; 404 for an image the caller may not see,
    whatever the filters (an unknown tag included)."""
    gallery, first, deleted = world
    if not gallery.images:
        return
    adapter.load(gallery, first, deleted)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    origin = data.draw(st.sampled_from(gallery.images))
    caller, query = data.draw(callers), data.draw(image_queries(gallery))
    ranking = Ranking.similar(origin.id, 0.5)
    if not can_see(caller, origin.user_id, origin.public):
        for text in (to_query_string(query, rng, 1, 5), "tag=nosuchtag"):
            with pytest.raises(NotFound):
                adapter.page(text, caller, ranking)
        return
    vector = query_vector(vector_of(origin.id), 0.5, 0.5)
    best = sorted((n for n in expected_list(gallery, caller, query) if n != origin.id),
                  key=lambda n: -score(vector, vector_of(n)))
    size, walked = data.draw(st.integers(1, 4)), []
    for page in range(1, len(best) // size + 2):
        found = adapter.page(to_query_string(query, rng, page, size), caller, ranking)
        assert (found.total, found.next, found.sort_applied) == (len(best), page * size < len(best), "similar")
        walked += found.ids
    assert walked == best


def _fixed_gallery(adapter: Adapter, count: int = 7) -> list[int]:
    """Images 1..count, public, one a day (the newest last), all with vectors; their ids newest first."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    images = [Image(id=n, user_id=1 + n % 2, public=True, created_at=start + timedelta(days=n), tag_ids=[],
                    name=f"n{n}") for n in range(1, count + 1)]
    adapter.load(Gallery(images=images, tags=[], likes=set(), choices=[]), images, [])
    return [i.id for i in reversed(images)]


def test_similar_to_an_image_without_a_vector_yet_is_the_rest_in_date_order(adapter: Adapter) -> None:
    newest = _fixed_gallery(adapter)
    with psycopg.connect(adapter.url) as conn:
        conn.execute("UPDATE rm.images SET embedding = NULL WHERE id = 3")
    found = adapter.page("page_size=100", Caller(), Ranking.similar(3, 0.5))
    assert (found.ids, found.total, found.sort_applied) == ([n for n in newest if n != 3], 6, "date-")


def test_the_postgres_adapter_reads_a_ranked_page_with_its_rows_on_one_connection(adapter: Adapter) -> None:
    """The query vector, the total, the ranked ids and the rows of a `similar=` page come from one connection
    (one REPEATABLE READ snapshot): on the ranked run, and past it (the rest, newest first)."""
    if adapter.kind != "postgres":
        pytest.skip("the PostgreSQL adapter's own reads")
    newest = _fixed_gallery(adapter)
    columns = "i.id, i.name, i.user_id"
    vector = query_vector(vector_of(4), 0.5, 0.5)
    ranked = sorted((n for n in newest if n != 4), key=lambda n: -score(vector, vector_of(n)))
    adapter.search.nearest = 3  # type: ignore[attr-defined]
    try:
        walked = []
        for page in (1, 2, 3):
            adapter.pool.pop_stats()
            found = adapter.page(f"page={page}&page_size=2", Caller(), Ranking.similar(4, 0.5), columns)
            assert adapter.pool.get_stats().get("requests_num") == 1
            assert found.rows == [{"id": n, "name": f"n{n}", "user_id": 1 + n % 2} for n in found.ids]
            walked += found.ids
        assert found.total == 6 and not found.next
        assert walked == [*ranked[:3], *(n for n in newest if n not in ranked[:3] and n != 4)]
        assert adapter.page("page_size=2", Caller(), Ranking.similar(4, 0.5)).rows is None  # no columns asked
    finally:
        adapter.search.nearest = 1000  # type: ignore[attr-defined]


def test_the_elasticsearch_adapters_similar_vector_is_read_from_postgres(adapter: Adapter) -> None:
    """recommend.image_ranking, the query vector the Elasticsearch adapter sends for `similar=`: it reads
    PostgreSQL only, so it runs here although no Elasticsearch can."""
    if adapter.kind != "postgres":
        pytest.skip("PostgreSQL only: the same code for either adapter")
    _fixed_gallery(adapter)
    with psycopg.connect(adapter.url) as conn:
        conn.execute("UPDATE rm.images SET embedding = NULL WHERE id = 3")
        conn.execute("UPDATE rm.images SET public = false WHERE id = 5")  # Bob's (user 2)

    async def read(caller: Caller, image_id: int) -> Ranking:
        async with adapter.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            return await image_ranking(cur, actor_of(caller), Ranking.similar(image_id, 0.5))

    found = adapter.runner.run(read(Caller(), 4))
    assert (found.applied, found.leave_out, found.of_image) == ("similar", 4, None) and found.vector is not None
    assert max(abs(a - b) for a, b in zip(found.vector, query_vector(vector_of(4), 0.5, 0.5), strict=True)) < 1e-7
    assert adapter.runner.run(read(Caller(), 3)) == Ranking(None, "date-", leave_out=3)
    assert adapter.runner.run(read(Caller(2), 5)).applied == "similar"
    with pytest.raises(NotFound):
        adapter.runner.run(read(Caller(1), 5))


@settings(max_examples=30, deadline=None, suppress_health_check=SUPPRESS)
@given(data=st.data(), world=galleries())
def test_past_the_nearest_come_the_sources_then_the_rest_each_newest_first(
        adapter: Adapter, data: st.DataObject, world: tuple[Gallery, list[Image], list[int]]) -> None:
    """A recommendation with `nearest` 3: the 3 best of the selected images that are not sources, then the
    selected sources, then every other selected image, both newest first; every selected image once."""
    gallery, first, deleted = world
    if not gallery.images:
        return
    adapter.load(gallery, first, deleted)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    sources = tuple(data.draw(st.lists(st.sampled_from([i.id for i in gallery.images]), max_size=4, unique=True)))
    vector = vector_of(data.draw(st.integers(1, 10**6)))
    by_id = {i.id: i for i in gallery.images}
    query = data.draw(image_queries(gallery))
    caller = data.draw(callers)
    newest = sorted(expected_list(gallery, caller, query), key=lambda n: (by_id[n].created_at, n), reverse=True)
    near = sorted((n for n in newest if n not in sources), key=lambda n: -score(vector, vector_of(n)))[:3]
    expected = [*near, *(n for n in newest if n in sources), *(n for n in newest if n not in sources and n not in near)]
    size, walked = data.draw(st.integers(1, 4)), []
    adapter.search.nearest = 3  # type: ignore[attr-defined]
    try:
        for page in range(1, len(expected) // size + 2):
            found = adapter.page(to_query_string(query, rng, page, size), caller,
                                 Ranking(vector, "like", after=sources))
            assert found.next == (page * size < len(expected)) and found.total == len(expected)
            walked += found.ids
    finally:
        adapter.search.nearest = 1000  # type: ignore[attr-defined]
    assert walked == expected


@pytest.mark.skipif(not ES_URL, reason=NO_ES)
def test_the_search_sink_keeps_its_checkpoint_in_the_cluster_and_copies_it_to_postgres(database_url: str) -> None:
    from infra.search_index import checkpoint_index_name, index_name
    from projectors import checkpoints
    from projectors.search.images import ImageSearchProjector
    from projectors.search.sink import ElasticsearchSink
    from projectors.sink import CheckpointMoved

    prefix = f"aidraw-sink-{random.randrange(10**9)}"

    async def scenario() -> None:
        sink = ElasticsearchSink(ImageSearchProjector(ES_URL, prefix), database_url)
        assert await sink.open(asyncio.Event())
        try:
            assert await sink.load_checkpoint() == 0
            await sink.apply_batch(0, [])
            assert await sink.commit(7) == []
            assert await sink.load_checkpoint() == 7
            with pytest.raises(CheckpointMoved):
                await sink.apply_batch(3, [])
            with pytest.raises(CheckpointMoved):  # the index refuses a checkpoint that goes backwards
                await sink.commit(5)
            assert await sink.load_checkpoint() == 7
            async with await psycopg.AsyncConnection.connect(database_url) as conn:
                assert await checkpoints.read(conn, sink.name) == 7
        finally:
            for name in (index_name(prefix), checkpoint_index_name(prefix)):
                await sink.projector.client.indices.delete(index=name, ignore_unavailable=True)
            await sink.close()

    asyncio.run(scenario())


@pytest.mark.skipif(not ES_URL, reason=NO_ES)
def test_the_search_projector_refuses_an_index_of_another_embedding_width() -> None:
    from infra.embeddings import PIXELS, Recipe
    from infra.search_index import IndexShapeError
    from projectors.search.images import ImageSearchProjector

    prefix = f"aidraw-shape-{random.randrange(10**9)}"
    clip = Recipe(version=7, image_model="CLIP test", image_dims=512)

    async def scenario() -> None:
        pixels = ImageSearchProjector(ES_URL, prefix, PIXELS)
        name = await pixels.index("rm")  # made for the pixel recipe: 448 floats
        clip_projector = ImageSearchProjector(ES_URL, prefix, clip)
        try:
            with pytest.raises(IndexShapeError, match=r"holds embeddings of 448 floats.*aidraw rebuild search_images"):
                await clip_projector.index("rm")
            await pixels.close()
            assert await pixels.index("rm") == name  # checked again on a new client, of its own recipe: taken
        finally:
            await pixels.client.indices.delete(index=name, ignore_unavailable=True)
            await pixels.close()
            await clip_projector.close()

    asyncio.run(scenario())
