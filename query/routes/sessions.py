"""GET /api/sessions: the caller's live sessions (an admin may ask for another user's with `user=`), and
GET /api/sessions/{id}: one of them. Never a token, nor its hash."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request

from infra.account_schemas import SessionOut, SessionPage
from infra.auth import RequiredUser
from infra.errors import Forbidden, NotFound
from infra.http import ObjectId
from query.collections import SESSIONS
from query.consistency import Consistent
from query.db import Pool, fetch_one
from query.engine import list_page, visibility_sql
from query.list_docs import list_parameters
from query.listing import Condition, parse_list

router = APIRouter(tags=["sessions"])

COLUMNS = "id, user_id, created_at, expires_at, last_seen_at, user_agent"


@router.get("/api/sessions", response_model=SessionPage, openapi_extra=list_parameters(SESSIONS))
@router.get("/api/sesions", response_model=SessionPage, include_in_schema=False)
async def list_sessions(request: Request, pool: Pool, actor: RequiredUser, _: Consistent) -> dict[str, Any]:
    """Your sessions that are not ended or expired, newest first. Admins: `user=ID` for another user's."""
    query = parse_list(request.query_params, SESSIONS)
    asked = {user for condition in query.conditions for user in condition.values}
    if asked - {actor.user_id} and not actor.is_admin:
        raise Forbidden("Only admins may list another user's sessions.")
    if not asked:  # one's own by default, an admin's too
        query = replace(query, conditions=(Condition("user", SESSIONS.params["user"], (actor.user_id,)),))
    return await list_page(pool, SESSIONS, query, actor, columns=COLUMNS)


@router.get("/api/sessions/{session_id}", response_model=SessionOut)
@router.get("/api/sesions/{session_id}", response_model=SessionOut, include_in_schema=False)
async def get_session(session_id: ObjectId, pool: Pool, actor: RequiredUser, _: Consistent) -> dict[str, Any]:
    """One live session of yours (admins: anyone's); another user's, an ended or an expired one is 404."""
    a = SESSIONS.alias
    visible, params = visibility_sql(SESSIONS, actor)
    row = await fetch_one(pool, f"SELECT {COLUMNS} FROM {SESSIONS.table} {a} WHERE {a}.id = %s"
                                f" AND ({SESSIONS.scope}) AND ({visible})", (session_id, *params))
    if row is None:
        raise NotFound(f"No session with id {session_id}.")
    return row
