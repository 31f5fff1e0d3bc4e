"""GET /api/sessions: the caller's live sessions (an admin may ask for another user's with `user=`).
Never a token, nor its hash."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from infra.account_schemas import SessionPage
from infra.auth import RequiredUser
from infra.errors import Forbidden, Invalid
from query.consistency import Consistent
from query.db import Pool, fetch_all
from query.listing import parse_list_query

router = APIRouter(tags=["sessions"])

COLUMNS = "id, user_id, created_at, expires_at, last_seen_at, user_agent"


@router.get("/api/sessions", response_model=SessionPage)
@router.get("/api/sesions", response_model=SessionPage, include_in_schema=False)
async def list_sessions(request: Request, pool: Pool, actor: RequiredUser, _: Consistent) -> dict[str, Any]:
    """Your sessions that are not ended or expired, newest first. Admins: `user=ID` for another user's."""
    query = parse_list_query(request.query_params, {"user", "user_id"})
    user_id = actor.user_id
    for name in ("user", "user_id"):
        for group in query.filters.get(name, []):
            if len(group) != 1 or not group[0].isdigit():
                raise Invalid(f"{name} is one user id.", field=f"query.{name}")
            if int(group[0]) != actor.user_id and not actor.is_admin:
                raise Forbidden("Only admins may list another user's sessions.")
            user_id = int(group[0])
    order = "created_at DESC, id DESC" if query.sort == "date-" else "created_at ASC, id ASC"
    rows = await fetch_all(
        pool,
        f"SELECT {COLUMNS}, count(*) OVER () AS total FROM rm.sessions"
        f" WHERE user_id = %s AND ended_at IS NULL AND expires_at > now() ORDER BY {order} LIMIT %s OFFSET %s",
        [user_id, query.page_size + 1, query.offset],
    )
    return {"page": query.page, "page_size": query.page_size, "total": rows[0]["total"] if rows else 0,
            "next": len(rows) > query.page_size,
            "list": [{k: r[k] for k in ("id", "user_id", "created_at", "expires_at", "last_seen_at", "user_agent")}
                     for r in rows[: query.page_size]]}
