"""Picks the image search adapter by configuration (AIDRAW_SEARCH; docs/search.md)."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from infra.search_index import async_client, index_name
from infra.settings import Settings
from query.search.elasticsearch import ElasticsearchImageSearch
from query.search.postgres import PostgresImageSearch
from query.search.protocol import ImageSearch


def image_search(settings: Settings, pool: AsyncConnectionPool) -> ImageSearch:
    if settings.search_backend == "elasticsearch":
        return ElasticsearchImageSearch(async_client(settings.elasticsearch_url), index_name(settings.subject_prefix),
                                        pool, settings.similar_nearest)
    return PostgresImageSearch(pool, settings.similar_nearest)
