"""The list queries bench/lists.py times, and the three ways it runs each one.

Each query draws its arguments per round from realistic pools (popular tags, prolific owners, active likers,
big collections, a month-and-a-half window), so a percentile is over many variants, not one cached answer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.datastructures import QueryParams

from bench.gallery import WORDS, Loaded
from infra.actor import Actor
from query.collections import IMAGES
from query.dates import parse_date
from query.db import make_pool
from query.engine import list_page
from query.listing import parse_list

Params = list[tuple[str, str]]
WARMUP = 3


@dataclass(frozen=True)
class Context:
    loaded: Loaded
    me: int  # the bench account: the most prolific owner
    deep_cursor: str  # the cursor of page 500 of the whole gallery, newest first


@dataclass(frozen=True)
class ListBench:
    name: str
    params: Callable[[random.Random, Context], Params]
    logged_in: bool = False


def _top(rng: random.Random, ranked: list[Any], top: int) -> Any:
    return ranked[rng.randrange(min(top, len(ranked)))]


def _tag(rng: random.Random, c: Context, top: int = 20) -> str:
    return str(_top(rng, c.loaded.tag_names, top))


def _window(rng: random.Random) -> str:
    first = date(2023, 1, 1) + timedelta(days=rng.randrange(3 * 365 - 45))
    return f"{first:%Y%m%d}~{first + timedelta(days=45):%Y%m%d}"


MATRIX = [
    ListBench("first page", lambda r, c: []),
    ListBench("page 500", lambda r, c: [("page", str(r.randint(495, 505)))]),
    ListBench("page 5000", lambda r, c: [("page", str(r.randint(4995, 5005)))]),
    ListBench("page 500 by cursor", lambda r, c: [("cursor", c.deep_cursor)]),
    ListBench("tag", lambda r, c: [("tag", _tag(r, c))]),
    ListBench("tag, page 200", lambda r, c: [("tag", _tag(r, c)), ("page", str(r.randint(195, 205)))]),
    ListBench("tag union", lambda r, c: [("tag", f"{_tag(r, c, 50)},{_tag(r, c, 50)}")]),
    ListBench("tag intersection", lambda r, c: [("tag", _tag(r, c, 50)), ("tag", _tag(r, c, 50))]),
    ListBench("user and tag", lambda r, c: [("user", str(_top(r, c.loaded.user_ids, 50))), ("tag", _tag(r, c))]),
    ListBench("date range", lambda r, c: [("date", _window(r))]),
    ListBench("date range, page 100", lambda r, c: [("date", _window(r)), ("page", str(r.randint(95, 105)))]),
    ListBench("liked-by", lambda r, c: [("like", str(_top(r, c.loaded.liker_ids, 50)))]),
    ListBench("in-collection", lambda r, c: [("choice", str(_top(r, c.loaded.choice_ids, 50)))]),
    ListBench("text q", lambda r, c: [("q", WORDS[r.randrange(20, 120)])]),
    ListBench("sort=likes", lambda r, c: [("sort", "likes")]),
    ListBench("logged in: first page", lambda r, c: [], logged_in=True),
    ListBench("logged in: own, page 300", lambda r, c: [("user", str(c.me)), ("page", str(r.randint(295, 305)))],
              logged_in=True),
]


def plain_sql(params: Params, me: int | None) -> tuple[str, str, list[Any]]:
    """What a straightforward implementation runs: the page by ORDER BY ... OFFSET, and an exact count(*)."""
    where: list[str] = ["(i.public OR i.user_id = %s)"] if me else ["i.public"]
    args: list[Any] = [me] if me else []
    page, size, order = 1, 20, "i.created_at DESC, i.id DESC"
    for key, value in params:
        if key == "page":
            page = int(value)
        elif key == "cursor":
            page = 500
        elif key == "sort":
            order = "i.likes DESC, i.created_at DESC, i.id DESC"
        elif key == "tag":
            where.append("i.tag_ids && ARRAY(SELECT id FROM rm.tags WHERE lower(name) = ANY(%s))")
            args.append([v.lower() for v in value.split(",")])
        elif key == "user":
            where.append("i.user_id = %s")
            args.append(int(value))
        elif key == "date":
            day = parse_date(value)
            where.append("i.created_at >= %s AND i.created_at < %s")
            args += [day.start, day.end]
        elif key == "like":
            where.append("i.id IN (SELECT image_id FROM rm.image_likes WHERE user_id = %s)")
            args.append(int(value))
        elif key == "choice":
            where.append("i.id IN (SELECT ci.image_id FROM rm.choice_items ci JOIN rm.choices c ON c.id ="
                         " ci.choice_id WHERE c.id = %s AND c.public)")
            args.append(int(value))
        elif key == "q":
            where.append("(i.name ILIKE %s OR i.prompt ILIKE %s)")
            args += [f"%{value}%"] * 2
    clause = " AND ".join(where)
    return (f"SELECT i.id FROM rm.images i WHERE {clause} ORDER BY {order} LIMIT {size + 1}"
            f" OFFSET {(page - 1) * size}", f"SELECT count(*) FROM rm.images i WHERE {clause}", args)


async def _api(client: httpx.AsyncClient, params: Params) -> dict[str, Any]:
    answer = await client.get("/api/images", params=tuple(params))
    answer.raise_for_status()
    return dict(answer.json())


async def _engine(pool: AsyncConnectionPool, params: Params, actor: Actor) -> dict[str, Any]:
    return await list_page(pool, IMAGES, parse_list(QueryParams(params), IMAGES), actor)


async def _plain(sql: psycopg.AsyncConnection[Any], params: Params, me: int | None) -> dict[str, Any]:
    page_sql, count_sql, args = plain_sql(params, me)
    rows = await (await sql.execute(page_sql, args)).fetchall()  # type: ignore[arg-type]
    total = await (await sql.execute(count_sql, args)).fetchone()  # type: ignore[arg-type]
    return {"list": rows, "total": total}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_matrix(url: str, database_url: str, me: dict[str, Any], loaded: Loaded, rounds: int,
                     matrix: list[ListBench]) -> str:
    pool = make_pool(database_url, max_size=2)
    await pool.open(wait=True)
    # Not the anonymous caller that signed up and logged in: its next reads would wait for the accounts
    # projections (read-your-writes), which the benchmark does not run.
    agent = {"User-Agent": "aidraw-bench-lists"}
    anonymous = httpx.AsyncClient(base_url=url, timeout=60, headers=agent)
    user = httpx.AsyncClient(base_url=url, timeout=60, headers={**agent, "Authorization": f"Bearer {me['token']}"})
    sql = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    deep = (await anonymous.get("/api/images", params={"page": 499})).json()["cursor"]
    context = Context(loaded, me["id"], deep)
    rng = random.Random(7)
    lines = ["| query | total | API p50 | API p99 | engine p50 | engine p99 | plain SQL p50 | plain SQL p99 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    try:
        for bench in matrix:
            timings: dict[str, list[float]] = {"api": [], "engine": [], "sql": []}
            totals: list[int] = []
            exact = True
            client, actor = (user, Actor(me["id"], "user")) if bench.logged_in else (anonymous, Actor())
            for round_number in range(WARMUP + rounds):
                params = bench.params(rng, context)
                ways = {"api": _api(client, params), "engine": _engine(pool, params, actor),  # start when awaited
                        "sql": _plain(sql, params, me["id"] if bench.logged_in else None)}
                order = list(ways)
                rng.shuffle(order)  # no way always runs right after another (a plain SQL scan leaves cold caches)
                for key in order:
                    started = time.perf_counter()
                    body = await ways[key]
                    seconds = time.perf_counter() - started
                    if round_number >= WARMUP:
                        timings[key].append(seconds * 1000)
                        if key == "api":
                            totals.append(body["total"])
                            exact = exact and body["total_exact"]
            cells = [f"{percentile(timings[k], q):.1f}" for k in ("api", "engine", "sql") for q in (0.5, 0.99)]
            total = f"{sorted(totals)[len(totals) // 2]:,}" + ("" if exact else "+")  # the median; + = lower bound
            lines.append(f"| {bench.name} | {total} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    finally:
        await anonymous.aclose()
        await user.aclose()
        await sql.close()
        await pool.close()
    return "\n".join(lines)
