"""The errors any side may raise, and the one place that turns them into HTTP answers (problem+json, RFC 9457).

Command and query code raise these; `aidraw.app` installs `problem_handlers` so that every error, including
FastAPI's own validation errors and unexpected ones, leaves the service as `application/problem+json`.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from eventsourcing.persistence import OperationalError as EventLogUnreachable
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("aidraw.errors")

PROBLEM = "application/problem+json"
RETRY_AFTER_S = 2  # what a 503 asks a client to wait: the embedded servers restart within a few seconds


class ServiceError(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class Invalid(ServiceError):
    status = 422
    title = "Unprocessable Content"

    def __init__(self, detail: str, *, field: str | None = None, errors: list[dict[str, Any]] | None = None) -> None:
        if errors is None and field is not None:
            errors = [{"loc": field.split("."), "msg": detail, "type": "value_error"}]
        super().__init__(detail, errors=errors)


class Unauthorized(ServiceError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str = "A valid token is required: log in with POST /api/sessions.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class NotFound(ServiceError):
    status = 404
    title = "Not Found"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"


class TooLarge(ServiceError):
    status = 413
    title = "Content Too Large"


class RateLimited(ServiceError):
    status = 429
    title = "Too Many Requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class Unavailable(ServiceError):
    """A server this request needs is unreachable just now (503 with Retry-After)."""

    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int = RETRY_AFTER_S) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem(status: int, title: str, detail: str, *, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    cleaned = []
    for err in exc.errors():
        item = {"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", "")),
                "type": str(err.get("type", ""))}
        cleaned.append(item)
    return cleaned


SEND_JSON = "send UTF-8 JSON with Content-Type: application/json"
MAX_DETAILED = 5  # field problems spelled out in `detail`; `errors` has them all


def unreadable_json(why: str) -> JSONResponse:
    """A body that is not JSON at all: 422 (it is bad input like any other), saying what is wrong."""
    return problem(422, "Unprocessable Content", f"The body is not valid JSON ({why}): {SEND_JSON}.",
                   errors=[{"loc": ["body"], "msg": why, "type": "json_invalid"}])


def _why_unparsed(cause: BaseException | None) -> str:
    """What made the JSON parser give up on a body FastAPI could not read (its 400 hides the reason)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"byte 0x{cause.object[cause.start]:02x} at position {cause.start} is not UTF-8"
    if isinstance(cause, RecursionError):
        return "arrays or objects nest too deeply to read"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "an integer has too many digits to read; integers must lie between -(2^53-1) and 2^53-1"
    return "it cannot be read"


def _field_detail(errors: list[dict[str, Any]]) -> str:
    said = [f"{'.'.join(e['loc'][1:] or e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in errors[:MAX_DETAILED]]
    more = f" (and {len(errors) - MAX_DETAILED} more in `errors`)" if len(errors) > MAX_DETAILED else ""
    return f"Invalid input: {'; '.join(said)}{more}." if said else "Invalid input."


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, errors=exc.errors, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        for err in exc.errors():
            if err.get("type") == "json_invalid":  # FastAPI's loc ("body", <character>) is not a field
                position = err.get("loc", ("body", "?"))[-1]
                reason = str(err.get("ctx", {}).get("error", "invalid syntax"))
                return unreadable_json(f"{reason[:1].lower()}{reason[1:]} at character {position}")
        errors = _clean_validation_errors(exc)
        if isinstance(exc.body, bytes) and any(e["loc"] == ["body"] for e in errors):
            # Bytes: the body was not read as JSON, because of its Content-Type (FastAPI reads JSON only when
            # it is application/json or +json).
            sent = request.headers.get("content-type") or "none"
            return problem(422, "Unprocessable Content", f"The body was not read as JSON: its Content-Type is "
                           f"{sent}; {SEND_JSON}.", errors=errors)
        return problem(422, "Unprocessable Content", _field_detail(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's "error parsing the body": a body that is not UTF-8, nests past the parser's recursion
            # limit, or holds a number too long to convert. Bad input, so 422 like other unreadable JSON.
            return unreadable_json(_why_unparsed(exc.__cause__))
        titles = {404: "Not Found", 405: "Method Not Allowed", 401: "Unauthorized", 400: "Bad Request",
                  413: "Content Too Large"}
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), detail,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(psycopg.errors.UndefinedTable)
    async def _read_model_missing(request: Request, exc: psycopg.errors.UndefinedTable) -> JSONResponse:
        # The migration step (`aidraw migrate`, run by `aidraw run` and `aidraw projector`) creates every table;
        # an API started against a database nothing migrated yet has nothing to read: a wait, not a server error.
        log.warning("read model missing", extra={"path": request.url.path, "error": str(exc).splitlines()[0]})
        return problem(503, "Service Unavailable", "The read models do not exist yet (`aidraw migrate` creates "
                       "them); try again shortly.", headers={"Retry-After": "2"})

    @app.exception_handler(EventLogUnreachable)
    async def _event_log_unreachable(request: Request, exc: EventLogUnreachable) -> JSONResponse:
        # A read of the log, or a write refused before it was stored (OutcomeUnknown is answered in command/app.py).
        log.warning("event log unreachable", extra={"path": request.url.path, "error": str(exc)})
        return problem(503, "Service Unavailable", "The event log cannot be reached just now; try again shortly "
                       "(with the same Idempotency-Key, if the request had one).",
                       headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(psycopg.OperationalError)
    async def _database_unreachable(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning("database unreachable", extra={"path": request.url.path, "error": str(exc).splitlines()[0]})
        return problem(503, "Service Unavailable", "The database cannot be reached just now; try again shortly.",
                       headers={"Retry-After": str(RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path, "method": request.method})
        return problem(500, "Internal Server Error", "An unexpected error happened; it has been logged.")
