"""/openapi.json declares errors as they are answered: problem+json, with the statuses each operation can give."""

from __future__ import annotations

import json

import pytest

from aidraw.app import create_app
from infra.settings import Settings


@pytest.fixture(scope="module")
def spec() -> dict:
    return create_app(Settings.from_env(), "nats://127.0.0.1:1", "postgresql://127.0.0.1:1/x").openapi()


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, ops in spec["paths"].items() if path.startswith("/api/")
            for method, op in ops.items()]


def test_every_api_operation_declares_its_errors_as_problem_json(spec: dict) -> None:
    for path, method, op in _operations(spec):
        declared = op["responses"]
        for status in ("401", "422", "503"):
            assert list(declared[status]["content"]) == ["application/problem+json"], (method, path, status)
        if method != "get":
            assert {"403", "409", "413", "429"} <= set(declared), (method, path)
        if "{" in path:
            assert "404" in declared, (method, path)
    assert "HTTPValidationError" not in json.dumps(spec)
    assert set(spec["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status", "detail"}


def test_repeatable_list_parameters_are_arrays_sent_one_per_value(spec: dict) -> None:
    params = {p["name"]: p for p in spec["paths"]["/api/images"]["get"]["parameters"]}
    for name in ("tag", "user", "like", "choice"):
        assert params[name]["schema"]["type"] == "array" and params[name]["explode"] is True, name
    assert params["date"]["schema"]["type"] == "string" and params["public"]["schema"]["type"] == "string"
