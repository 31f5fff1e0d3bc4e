"""aidraw/observe.py in front of a small FastAPI app with the real problem handlers: what it records, marks
and measures, and what it leaves be.

The full app's labels (a route's template, "unmatched", BodyLimit's 413s) are checked against a running system in
tests/integration/test_ops_and_replay.py; here the parts a real route rarely shows: a streamed body, an exception,
a websocket."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from aidraw import ops
from aidraw.observe import Observe
from infra.errors import install_problem_handlers
from infra.http import SEQUENCE_HEADER
from infra.services import SERVICES_KEY
from query.consistency import STALE_HEADER, CallerSequences, token_caller_key

TOKEN = "t-" + uuid.uuid4().hex  # any presented token names its caller


async def login(request: Request) -> Response:
    request.state.issued_token = "issued-" + TOKEN  # as command/routes/sessions.py does
    return JSONResponse({}, status_code=201, headers={SEQUENCE_HEADER: "41"})


async def stale_read(request: Request) -> Response:
    request.state.stale = True  # as query/consistency.py does after the bound
    return JSONResponse({}, status_code=404)


async def stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            await asyncio.sleep(0.05)
            yield b"x"
    return StreamingResponse(chunks())


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def echo(socket: WebSocket) -> None:
    await socket.accept()
    await socket.send_text(await socket.receive_text())
    await socket.close()


class WithServices:
    """What the app's lifespan gives every request: the container in scope["state"]."""

    def __init__(self, app: ASGIApp, services: object) -> None:
        self.app, self.services = app, services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            scope["state"] = {SERVICES_KEY: self.services}
        await self.app(scope, receive, send)


def served_app(sequences: CallerSequences) -> ASGIApp:
    app = FastAPI()
    app.add_api_route("/observe-test/login", login, methods=["POST"])
    app.add_api_route("/observe-test/items/{item_id}", stale_read)
    app.add_api_route("/observe-test/stream", stream)
    app.add_api_route("/observe-test/boom", boom)
    app.add_api_websocket_route("/observe-test/socket", echo)
    install_problem_handlers(app)  # as aidraw/app.py: the 500 answer comes from outside Observe
    app.add_middleware(Observe)
    return WithServices(app, SimpleNamespace(caller_sequences=sequences))


@pytest.fixture
def served() -> Iterator[tuple[TestClient, CallerSequences]]:
    sequences = CallerSequences()
    with TestClient(served_app(sequences)) as client:
        yield client, sequences


def count(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return ops.REGISTRY.get_sample_value("aidraw_http_request_duration_seconds_count", labels) or 0.0


def total(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return ops.REGISTRY.get_sample_value("aidraw_http_request_duration_seconds_sum", labels) or 0.0


def test_a_write_is_recorded_for_its_caller_and_for_the_token_a_login_issued(
        served: tuple[TestClient, CallerSequences]) -> None:
    client, sequences = served
    before = count("POST", "/observe-test/login", 201)
    answer = client.post("/observe-test/login", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 201 and answer.headers[SEQUENCE_HEADER] == "41"
    assert sequences.last(token_caller_key(TOKEN)) == 41
    assert sequences.last(token_caller_key("issued-" + TOKEN)) == 41
    assert STALE_HEADER not in answer.headers
    assert count("POST", "/observe-test/login", 201) == before + 1


def test_a_stale_answer_is_marked_an_error_one_included_and_measured_by_its_template(
        served: tuple[TestClient, CallerSequences]) -> None:
    client, sequences = served
    before = count("GET", "/observe-test/items/{item_id}", 404)
    answer = client.get("/observe-test/items/7", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 404 and answer.headers[STALE_HEADER] == "stale"
    assert sequences.last(token_caller_key(TOKEN)) == 0  # no write: nothing recorded
    assert count("GET", "/observe-test/items/{item_id}", 404) == before + 1


def test_a_streamed_answer_is_timed_to_its_last_chunk(served: tuple[TestClient, CallerSequences]) -> None:
    client, _ = served
    before = total("GET", "/observe-test/stream", 200)
    assert client.get("/observe-test/stream").content == b"xxx"
    assert total("GET", "/observe-test/stream", 200) - before >= 0.15  # three chunks 50 ms apart


def test_an_exception_propagates_unobserved(served: tuple[TestClient, CallerSequences]) -> None:
    client, _ = served
    with pytest.raises(RuntimeError, match="boom"):
        client.get("/observe-test/boom")
    with TestClient(served_app(CallerSequences()), raise_server_exceptions=False) as server:
        answer = server.get("/observe-test/boom")  # what a server sends: the outermost problem handler's answer
    assert answer.status_code == 500 and answer.headers["content-type"] == "application/problem+json"
    assert count("GET", "/observe-test/boom", 500) == 0  # the server error middleware outside answers it


def test_a_websocket_passes_through_unmeasured(served: tuple[TestClient, CallerSequences]) -> None:
    client, _ = served
    with client.websocket_connect("/observe-test/socket") as socket:
        socket.send_text("hello")
        assert socket.receive_text() == "hello"
    assert count("GET", "/observe-test/socket", 200) == 0
