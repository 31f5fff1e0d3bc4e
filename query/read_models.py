"""Answering 503, not 500, while a read model's tables do not exist yet (its projector has not started)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg

from infra.errors import Unavailable


@asynccontextmanager
async def read_model_ready() -> AsyncIterator[None]:
    try:
        yield
    except psycopg.errors.UndefinedTable as exc:
        raise Unavailable("This list is being prepared (its read model does not exist yet); try again soon.") from exc
