"""Every list route documents, in /openapi.json, exactly the query parameters its parser accepts."""

from __future__ import annotations

import pytest

from aidraw.app import create_app
from infra.settings import Settings
from query import collections as c
from query.listing import PAGING

ALIASES = {"user_id", "pageSize"}
LISTS = {"/api/images": c.IMAGES, "/api/models": c.MODELS, "/api/tags": c.TAGS, "/api/users": c.USERS,
         "/api/params": c.PARAMS, "/api/datasets": c.DATASETS, "/api/choices": c.CHOICES,
         "/api/sessions": c.SESSIONS}


@pytest.fixture(scope="module")
def spec() -> dict:
    return create_app(Settings.from_env(), "nats://127.0.0.1:1", "postgresql://127.0.0.1:1/x").openapi()


@pytest.mark.parametrize("path", sorted(LISTS))
def test_a_list_route_documents_every_parameter_it_accepts(spec: dict, path: str) -> None:
    documented = {p["name"] for p in spec["paths"][path]["get"]["parameters"]}
    accepted = (set(LISTS[path].params) | PAGING) - ALIASES
    assert documented == accepted
    sort = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "sort")
    assert sort["schema"]["enum"] == list(LISTS[path].sorts)


def test_a_choice_of_values_names_them(spec: dict) -> None:
    status = next(p for p in spec["paths"]["/api/models"]["get"]["parameters"] if p["name"] == "status")
    assert all(value in status["description"] for value in c.MODEL_STATUSES)
