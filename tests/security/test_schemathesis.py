"""schemathesis over /openapi.json of the running system, for every /api route:
whatever it sends, no answer is a 5xx and every answer matches the documented schema. Bounded examples keep it
well under a minute. It calls as a logged-in user (a token of its own), so writes get past the token check.

(schemathesis's own pytest plugin does not run under this pytest version; hypothesis drives each operation's
strategy directly instead.)"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.accounts import new_account
from tests.system import System

COVERED = r"^/api/"
EXAMPLES = 12


def test_no_server_error_and_no_schema_violation(system: System) -> None:
    fuzzer = new_account(system, "fuzzer")
    schema = schemathesis.openapi.from_url(f"{system.url}/openapi.json").include(path_regex=COVERED)
    headers = {"Authorization": f"Bearer {fuzzer.token}"}
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the schema cannot describe fails the test with its reason
            raise result.err()
        operation = result.ok()
        tried += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(base_url=system.url, headers=headers,
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            check()
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert tried >= 10, f"only {tried} operations matched {COVERED}"
    if failures:
        pytest.fail("\n\n".join(failures))
