"""The errors any side may raise, and the one place that turns them into HTTP answers (problem+json, RFC 9457).

Command and query code raise these; `aidraw.app` installs `problem_handlers` so that every error, including
FastAPI's own validation errors and unexpected ones, leaves the service as `application/problem+json`.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("aidraw.errors")

PROBLEM = "application/problem+json"


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
    status = 503
    title = "Service Unavailable"


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


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, errors=exc.errors, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean_validation_errors(exc)
        fields = ", ".join(".".join(e["loc"][1:] or e["loc"]) for e in errors) or "request"
        return problem(422, "Unprocessable Content", f"Invalid input: {fields}.", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not Found", 405: "Method Not Allowed", 401: "Unauthorized", 400: "Bad Request"}
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), detail,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(psycopg.errors.UndefinedTable)
    async def _read_model_missing(request: Request, exc: psycopg.errors.UndefinedTable) -> JSONResponse:
        # A projector creates its tables when it first starts: until then (a fresh deployment, a projector not
        # yet running) a query has nothing to read. That is a wait, not a server error.
        log.warning("read model missing", extra={"path": request.url.path, "error": str(exc).splitlines()[0]})
        return problem(503, "Service Unavailable", "The read models are still being built; try again shortly.",
                       headers={"Retry-After": "2"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path, "method": request.method})
        return problem(500, "Internal Server Error", "An unexpected error happened; it has been logged.")
