"""The authorisation matrix: every route the app serves, called by an anonymous caller, user A (the owner of
the object), user B (another user) and an admin, each cell asserting the exact status.

The table is MATRIX below, one row per (METHOD, path template) of the app. `test_the_matrix_covers_every_route`
fails when the app serves a route the table lacks (or the table names one the app no longer has): a new route
gets its row here. A row says what its target is (`make`: a URL and body, built with A's objects) and the four
statuses; `fresh` rows build a new target for every cell (deletes, sign-ups), so cells do not disturb each other.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.accounts import PASSWORD, Account, log_in, new_account, new_admin
from tests.catalog_objects import png_bytes
from tests.image_support import log_end, wait_projected
from tests.live_support import open_socket
from tests.model_files import lora
from tests.security.routes import app_routes
from tests.servers_support import register_server
from tests.system import System

WHO = ("anonymous", "a", "b", "admin")


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Target:
    url: str
    json: Any = None
    files: Any = None
    data: Any = None
    owner: Account | None = None  # plays A in this cell (when the target is A's own user or session)


@dataclass
class World:
    system: System
    a: Account
    b: Account
    admin: Account
    cache: dict[str, Any] = field(default_factory=dict)

    def client(self, token: str | None) -> httpx.Client:
        return self.system.client(token)

    def create(self, collection: str) -> dict[str, Any]:
        """A new private object of A's in `collection` (a tag: one that nothing public carries yet)."""
        with self.client(self.a.token) as client:
            if collection == "images":
                answer = client.post("/api/images", files={"file": ("m.png", png_bytes(), "image/png")},
                                     data={"public": "false"})
            else:
                answer = client.post(f"/api/{collection}", json=CREATE[collection]())
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def owned(self, collection: str) -> dict[str, Any]:
        """A's private object in `collection`, made once."""
        if collection not in self.cache:
            self.cache[collection] = self.create(collection)
        return dict(self.cache[collection])


CREATE: dict[str, Callable[[], dict[str, Any]]] = {
    "tags": lambda: {"name": unique("tag")},
    "params": lambda: {"name": unique("param"), "public": False},
    "datasets": lambda: {"name": unique("set"), "public": False},
    "choices": lambda: {"name": unique("choice"), "public": False},
    "models": lambda: {"name": unique("model"), "type": "lora", "base_model": "SD1.5",
                       "data": {"oss": ["https://example.com/train/1.png"]},
                       "public": False},
}

Make = Callable[[World], Target]


@dataclass(frozen=True)
class Row:
    expect: tuple[int, int, int, int]  # anonymous, A (the owner), B (another user), admin
    make: Make
    fresh: bool = False


def fixed(url: str, **body: Any) -> Make:
    return lambda _: Target(url, **body)


def owned_collection(path: str, collection: str, patch: Callable[[], dict[str, Any]],
                     public: bool = False) -> dict[tuple[str, str], Row]:
    """The five routes of an owned collection; `path` is how the app spells it (aliases too)."""
    detail = "{" + {"dataset": "dataset", "datasets": "dataset", "choices": "choice", "params": "param",
                    "models": "model", "images": "image", "tags": "tag"}[path.rsplit("/", 1)[1]] + "_id}"
    hidden = 200 if public else 404  # another user's private object is unknown to them
    changes = 403 if public else 404

    def one(w: World) -> int:
        return int(w.owned(collection)["id"])

    def post(w: World) -> Target:
        if collection == "images":
            return Target(path, files={"file": ("m.png", png_bytes(), "image/png")}, data={"public": "false"})
        return Target(path, json=CREATE[collection]())

    return {
        ("POST", path): Row((401, 201, 201, 201), post, fresh=True),
        ("GET", path): Row((200, 200, 200, 200), fixed(path)),
        ("GET", f"{path}/{detail}"): Row((hidden, 200, hidden, 200), lambda w: Target(f"{path}/{one(w)}")),
        ("PATCH", f"{path}/{detail}"): Row((401, 200, changes, 200),
                                           lambda w: Target(f"{path}/{one(w)}", json=patch())),
        ("DELETE", f"{path}/{detail}"): Row((401, 204, changes, 204),
                                            lambda w: Target(f"{path}/{w.create(collection)['id']}"), fresh=True),
    }


def _new_owner(w: World) -> Account:
    return new_account(w.system, "owner")


def _own_user(w: World) -> Target:
    owner = _new_owner(w)
    return Target(f"/api/users/{owner.id}", owner=owner)


def _second_session(w: World) -> Target:
    session = log_in(w.system, name=w.a.name).json()
    return Target(f"/api/sessions/{session['id']}")


def _login(w: World) -> Target:
    return Target("/api/sessions", json={"name": w.a.name, "password": PASSWORD})


def _blob(w: World) -> Target:
    with w.client(w.a.token) as client:
        url = client.get(f"/api/images/{w.owned('images')['id']}").json()["url"]
    return Target(httpx.URL(url).path)  # local storage serves blobs at /api/blobs/<key>


def _model_file(w: World) -> Target:
    """A's private uploaded model's file (a model with a file: an upload is `success` at once)."""
    if "model_file" not in w.cache:
        with w.client(w.a.token) as client:
            answer = client.post("/api/models", files={"file": ("m.safetensors", lora(), "application/octet-stream")},
                                 data={"name": unique("upload"), "type": "lora", "base_model": "SD1.5"})
        assert answer.status_code == 201, answer.text
        w.cache["model_file"] = answer.json()["model_path"]
    return Target(str(w.cache["model_file"]))


def _new_task(w: World) -> int:
    """A waiting generation task of A's (POST /api/images with JSON answers 202 with it)."""
    with w.client(w.a.token) as client:
        answer = client.post("/api/images", json={"prompt": "a lighthouse at dusk", "public": False})
    assert answer.status_code == 202, answer.text
    return int(answer.json()["id"])


def _projected_task(w: World) -> int:
    """A fresh task that every caller's read already shows (a socket's first read waits for no one's writes)."""
    task = _new_task(w)
    wait_projected(w.system, log_end(w.system))
    return task


def _task(w: World) -> int:
    if "task" not in w.cache:
        w.cache["task"] = _new_task(w)
    return int(w.cache["task"])


def _new_server(w: World) -> int:
    """A runner that registered and is gone (no heartbeat): offline, so an admin may delete it."""
    server_id = register_server(w.system, unique("gpu"))
    wait_projected(w.system, log_end(w.system))
    return server_id


def _server(w: World) -> int:
    if "server" not in w.cache:
        w.cache["server"] = _new_server(w)
    return int(w.cache["server"])


def servers_rows(path: str) -> dict[tuple[str, str], Row]:
    """Servers (docs/runners.md): any logged-in user reads them; only admins drain or delete them."""
    return {
        ("GET", f"{path}/{{server_id}}"): Row((401, 200, 200, 200), lambda w: Target(f"{path}/{_server(w)}")),
        ("PATCH", f"{path}/{{server_id}}"): Row(
            (401, 403, 403, 200), lambda w: Target(f"{path}/{_server(w)}", json={"status": "draining"})),
        ("DELETE", f"{path}/{{server_id}}"): Row((401, 403, 403, 204),
                                                lambda w: Target(f"{path}/{_new_server(w)}"), fresh=True),
    }


def _sign_up(_: World) -> Target:
    name = unique("signup")
    return Target("/api/users", json={"name": name, "email": f"{name}@example.com", "password": PASSWORD})


ALL_200 = (200, 200, 200, 200)

MATRIX: dict[tuple[str, str], Row] = {
    # operations and documents: open to everyone
    ("GET", "/healthz"): Row(ALL_200, fixed("/healthz")),
    ("GET", "/readyz"): Row(ALL_200, fixed("/readyz")),
    ("GET", "/metrics"): Row(ALL_200, fixed("/metrics")),
    ("GET", "/openapi.json"): Row(ALL_200, fixed("/openapi.json")),
    ("GET", "/docs"): Row(ALL_200, fixed("/docs")),
    ("GET", "/docs/oauth2-redirect"): Row(ALL_200, fixed("/docs/oauth2-redirect")),
    ("GET", "/redoc"): Row(ALL_200, fixed("/redoc")),
    # users: public names; A's own account may be changed by A and admins
    ("POST", "/api/users"): Row((201, 201, 201, 201), _sign_up, fresh=True),
    ("GET", "/api/users"): Row(ALL_200, fixed("/api/users")),
    ("GET", "/api/users/{user_id}"): Row(ALL_200, lambda w: Target(f"/api/users/{w.a.id}")),
    ("PATCH", "/api/users/{user_id}"): Row((401, 200, 403, 200),
                                           lambda w: Target(f"/api/users/{w.a.id}", json={"name": unique("u")})),
    ("DELETE", "/api/users/{user_id}"): Row((401, 204, 403, 204), _own_user, fresh=True),
    ("GET", "/api/account"): Row((401, 200, 200, 200), fixed("/api/account")),
    ("PATCH", "/api/account"): Row((401, 200, 200, 200), lambda w: Target("/api/account", json={})),
    # sessions: logging in needs no token; a session is its user's (or an admin's) business
    ("POST", "/api/sessions"): Row((201, 201, 201, 201), _login, fresh=True),
    ("POST", "/api/sesions"): Row((201, 201, 201, 201),
                                  lambda w: Target("/api/sesions", json=_login(w).json), fresh=True),
    ("GET", "/api/sessions"): Row((401, 200, 200, 200), fixed("/api/sessions")),
    ("GET", "/api/sesions"): Row((401, 200, 200, 200), fixed("/api/sesions")),
    ("GET", "/api/sessions/{session_id}"): Row((401, 200, 404, 200),
                                               lambda w: Target(f"/api/sessions/{w.a.session_id}")),
    ("GET", "/api/sesions/{session_id}"): Row((401, 200, 404, 200),
                                              lambda w: Target(f"/api/sesions/{w.a.session_id}")),
    ("DELETE", "/api/sessions/{session_id}"): Row((401, 204, 404, 204), _second_session, fresh=True),
    ("DELETE", "/api/sesions/{session_id}"): Row(
        (401, 204, 404, 204), lambda w: Target(_second_session(w).url.replace("sessions", "sesions")), fresh=True),
    # audit trails: the owner or an admin
    ("GET", "/api/{collection}/{object_id}/events"): Row((404, 200, 404, 200),
                                                         lambda w: Target(f"/api/users/{w.a.id}/events")),
    # likes of A's private image: only those who can see it
    ("PUT", "/api/images/{image_id}/like"): Row((401, 204, 404, 204),
                                                lambda w: Target(f"/api/images/{w.owned('images')['id']}/like")),
    ("DELETE", "/api/images/{image_id}/like"): Row((401, 204, 404, 204),
                                                   lambda w: Target(f"/api/images/{w.owned('images')['id']}/like")),
    # blobs are capability URLs: whoever has the key
    ("GET", "/api/blobs/{key:path}"): Row(ALL_200, _blob),
    ("HEAD", "/api/blobs/{key:path}"): Row(ALL_200, _blob),
    # a model's file: like the model itself (A's private one: unknown to others)
    ("GET", "/api/models/{model_id}/file"): Row((404, 200, 404, 200), _model_file),
    # tasks: never public; their owner's and admins' business (anonymous: 401, another user: 404)
    ("GET", "/api/tasks"): Row((401, 200, 200, 200), fixed("/api/tasks")),
    # live-feed tickets: any logged-in caller, for their own session (docs/live.md)
    ("POST", "/api/tickets"): Row((401, 201, 201, 201), fixed("/api/tickets")),
    # live-feed sockets answer as the GET they watch (close 4401/4404 read as 401/404, a first message as 200)
    ("WS", "/api/tasks"): Row((401, 200, 200, 200), fixed("/api/tasks")),
    ("WS", "/api/{collection}/{object_id}"): Row((401, 200, 404, 200),
                                                  lambda w: Target(f"/api/tasks/{_projected_task(w)}"), fresh=True),
    ("GET", "/api/tasks/{task_id}"): Row((401, 200, 404, 200), lambda w: Target(f"/api/tasks/{_task(w)}")),
    ("PATCH", "/api/tasks/{task_id}"): Row((401, 200, 404, 200),
                                           lambda w: Target(f"/api/tasks/{_task(w)}", json={"status": "canceled"})),
    ("DELETE", "/api/tasks/{task_id}"): Row((401, 204, 404, 204), lambda w: Target(f"/api/tasks/{_new_task(w)}"),
                                            fresh=True),
    ("GET", "/api/servers"): Row((401, 200, 200, 200), fixed("/api/servers")),
    **servers_rows("/api/servers"),
    **servers_rows("/api/server"),
    **owned_collection("/api/tags", "tags", lambda: {"name": unique("tag")}, public=True),
    **owned_collection("/api/params", "params", lambda: {"name": unique("param")}),
    **owned_collection("/api/datasets", "datasets", lambda: {"name": unique("set")}),
    **owned_collection("/api/dataset", "datasets", lambda: {"name": unique("set")}),
    **owned_collection("/api/choices", "choices", lambda: {"name": unique("choice")}),
    **owned_collection("/api/models", "models", lambda: {"name": unique("model")}),
    **owned_collection("/api/images", "images", lambda: {"name": unique("image")}),
}
# Anyone logged in may create a tag; one that nothing public carries is seen by its creator and admins only;
# changing or deleting another's tag is 403 (names are unique across users: taking one says it exists anyway).
MATRIX[("GET", "/api/tags/{tag_id}")] = Row(
    (404, 200, 404, 200), lambda w: Target(f"/api/tags/{w.owned('tags')['id']}"))
MATRIX[("DELETE", "/api/tags/{tag_id}")] = Row(
    (401, 204, 403, 204), lambda w: Target(f"/api/tags/{w.create('tags')['id']}"), fresh=True)


def test_the_matrix_covers_every_route() -> None:
    served = app_routes()
    missing = sorted(served - set(MATRIX), key=lambda r: (r[1], r[0]))
    stale = sorted(set(MATRIX) - served, key=lambda r: (r[1], r[0]))
    assert not missing, f"routes without a row in tests/security/test_matrix.py MATRIX: {missing}"
    assert not stale, f"MATRIX rows for routes the app no longer serves: {stale}"


@pytest.fixture(scope="module")
def world(system: System) -> World:
    return World(system, new_account(system, "a"), new_account(system, "b"), new_admin(system))


def _call(w: World, method: str, who: str, target: Target) -> httpx.Response:
    account = {"a": target.owner or w.a, "b": w.b, "admin": w.admin}.get(who)
    if method == "WS":
        return _watch(w.system, account.token if account else None, target.url)
    with w.client(account.token if account else None) as client:
        return client.request(method, target.url, json=target.json, files=target.files, data=target.data)


def _watch(system: System, token: str | None, path: str) -> httpx.Response:
    """A socket's answer as a status: its close code less 4000, or 200 once it sends or stays open for 1 s."""
    with open_socket(system, path, token) as ws:
        try:
            ws.recv(timeout=1)
        except TimeoutError:
            pass
        except ConnectionClosed as closed:
            return httpx.Response(closed.rcvd.code - 4000 if closed.rcvd and closed.rcvd.code >= 4000 else 500)
    return httpx.Response(200)


ROUTES = sorted(MATRIX, key=lambda r: (r[1], r[0]))  # by path, then method


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_each_caller_gets_the_exact_status(world: World, route: tuple[str, str]) -> None:
    method, _ = route
    row = MATRIX[route]
    shared = None if row.fresh else row.make(world)
    got = {}
    for who in WHO:
        target = row.make(world) if row.fresh else shared
        assert target is not None
        got[who] = _call(world, method, who, target).status_code
    assert got == dict(zip(WHO, row.expect, strict=True))


PROBES = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
DOCS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}  # FastAPI's own pages, public before too
JUNK_TOKENS = ({"Authorization": "Bearer 1.junk"}, {"token": "junk"}, {"Authorization": "Basic Zm9vOmJhcg=="})


def test_a_bad_token_is_401_on_every_route_but_the_probes(world: World) -> None:
    """No route treats a bad token as anonymous; the probes answer as if none came (load balancers and
    scrapers send whatever they were configured with)."""
    for method, path in sorted(app_routes() - PROBES):
        if method == "WS" or path in DOCS:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path.replace("{collection}", "tags"))
        for headers in JUNK_TOKENS[:2]:
            with httpx.Client(base_url=world.system.url, headers=headers, timeout=30) as client:
                assert client.request(method, url).status_code == 401, (method, path, headers)
    for _, path in sorted(PROBES):
        with world.client(None) as client:
            plain = client.get(path).status_code
        for headers in JUNK_TOKENS:
            with httpx.Client(base_url=world.system.url, headers=headers, timeout=30) as client:
                assert client.get(path).status_code == plain == 200, (path, headers)
