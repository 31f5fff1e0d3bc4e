"""People for the catalog tests: two users and an admin with tokens, made through the real accounts routes
(tests/accounts.py), and the problem+json check every catalog test uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from tests.accounts import Account, new_account, new_admin
from tests.system import System

Person = Account

QueryScalar = str | int | float | bool | None
QueryValue = QueryScalar | Sequence[QueryScalar]
"""One query parameter's value as httpx takes it in `params=`: a sequence repeats the parameter."""


@dataclass(frozen=True)
class People:
    """Enough to show owner, other user, admin and anonymous (None)."""

    alice: Person
    bob: Person
    admin: Person


def make_people(system: System) -> People:
    return People(new_account(system, "alice"), new_account(system, "bob"), new_admin(system))


def client_of(system: System, person: Person | None) -> httpx.Client:
    return system.client(person.token if person else None)


def assert_problem(response: httpx.Response, status: int) -> dict:
    """An error answer: the status, as problem+json with a title and a detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)
