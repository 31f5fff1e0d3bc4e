"""The OpenAPI document says how errors really answer: `application/problem+json` (RFC 9457) with the statuses
each kind of operation can give, instead of FastAPI's default 422 in `application/json` and nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the kind of problem (`about:blank` by default)."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong and what to do about it."},
        "errors": {"type": "array", "items": {"type": "object"},
                   "description": "Field problems (422): `loc`, `msg`, `type` each."},
    },
}

EVERY = {
    "401": "The token is malformed, expired or revoked, or a write came without one.",
    "422": "A parameter, header or body is invalid; `errors` names each problem.",
    "503": "A read model is not ready yet, or a server is unreachable; retry after `Retry-After` seconds.",
}
WRITES = {
    "403": "The caller may see the object but not change it.",
    "409": "A conflict: a taken name or email, a locked model, a reused Idempotency-Key, a concurrent change.",
    "413": "The body is too large.",
    "429": "Too many attempts (failed logins); retry after `Retry-After` seconds.",
}
ONE = {"404": "No such object, or the caller may not see it."}
WRITE_METHODS = {"post", "put", "patch", "delete"}


def _statuses(method: str, path: str) -> dict[str, str]:
    statuses = dict(EVERY)
    if method in WRITE_METHODS:
        statuses |= WRITES
    if "{" in path:
        statuses |= ONE
    return statuses


def install_problem_docs(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status, description in _statuses(method, path).items():
                    responses[status] = {"description": description, "content": problem}
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
