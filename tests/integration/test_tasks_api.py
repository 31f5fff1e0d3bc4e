"""Generation requests and tasks over HTTP: POST /api/images with JSON answers 202 with a waiting task; every
field is checked (422 naming it, nothing stored); a per-user cap on unfinished tasks (429); /api/tasks lists,
shows, cancels and deletes, to the owner and admins only."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aidraw.services import NatsServer, PostgresServer
from tests.accounts import Account, new_account, new_admin, system_with
from tests.catalog_accounts import assert_problem, client_of
from tests.catalog_objects import upload_image
from tests.system import System

CAP = 3


@pytest.fixture(scope="module")
def system(nats_server: NatsServer, postgres_server: PostgresServer, servers_dir: Path) -> Iterator[System]:
    """This module's own system, with a small cap on unfinished tasks and a small pixel budget."""
    with system_with(nats_server, postgres_server, servers_dir, AIDRAW_TASK_MAX_UNFINISHED=str(CAP),
                     AIDRAW_GENERATION_MAX_SIDE="1024", AIDRAW_GENERATION_MAX_PIXELS=str(768 * 768)) as sut:
        yield sut


@pytest.fixture(scope="module")
def admin(system: System) -> Account:
    return new_admin(system)


@pytest.fixture
def user(system: System) -> Account:
    """A fresh user per test: each starts with no unfinished task."""
    return new_account(system, "gen")


def generate(system: System, who: Account, **fields: Any) -> dict[str, Any]:
    with client_of(system, who) as client:
        answer = client.post("/api/images", json={"prompt": "a red fox in snow", **fields})
        assert answer.status_code == 202, answer.text
        assert answer.headers["Location"] == f"/api/tasks/{answer.json()['id']}"
        return dict(answer.json())


def lifecycle(trail: list[dict[str, Any]]) -> list[str]:
    """The trail's event types without the scheduler's (TaskEnqueued, TaskReleased: test_scheduler.py's)."""
    return [e["type"] for e in trail if e["type"] not in ("TaskEnqueued", "TaskReleased")]


def get_task(system: System, who: Account, task_id: int) -> Any:
    with client_of(system, who) as client:
        return client.get(f"/api/tasks/{task_id}")


def listed(system: System, who: Account, **params: Any) -> list[int]:
    with client_of(system, who) as client:
        answer = client.get("/api/tasks", params={"page_size": 100, **params})
        assert answer.status_code == 200, answer.text
        return [t["id"] for t in answer.json()["list"]]


def test_a_generation_request_answers_202_with_a_waiting_task_and_its_whole_recipe(system: System,
                                                                                   user: Account) -> None:
    task = generate(system, user, negative_prompt="blurry", num_inference_steps=30, guidance_scale=6,
                    scheduler="K_EULER", seed=1234, width=640, height=384, batch_size=2, tags=["Fox"],
                    public=False, name="fox")
    assert {k: task[k] for k in ("name", "type", "status", "progress", "waiting_reason", "result", "error",
                                 "server_id", "attempt", "tags", "public", "user_id")} == {
        "name": "fox", "type": "inference", "status": "waiting", "progress": 0,
        "waiting_reason": "queued: waiting for a runner", "result": None, "error": None, "server_id": None,
        "attempt": 0, "tags": ["Fox"], "public": False, "user_id": user.id}
    assert task["data"] == {"prompt": "a red fox in snow", "negative_prompt": "blurry", "num_inference_steps": 30,
                            "guidance_scale": 6, "scheduler": "K_EULER", "seed": 1234, "width": 640,
                            "height": 384, "batch_size": 2, "model_id": None, "loras": [], "from_image": None,
                            "strength": None}
    shown = get_task(system, user, task["id"])
    assert shown.status_code == 200, shown.text
    scheduler_s = {"waiting_reason", "queue_position", "estimated_start_at", "updated_at"}  # it may have moved
    assert {k: v for k, v in shown.json().items() if k not in scheduler_s} == {
        k: v for k, v in task.items() if k not in scheduler_s}  # the read model says what the command answered


def test_an_absent_or_minus_one_seed_is_drawn_and_recorded(system: System, user: Account) -> None:
    drawn = [generate(system, user, **extra)["data"]["seed"] for extra in ({}, {"seed": -1})]
    for seed in drawn:
        assert 0 <= seed <= 2**32 - 1
    assert drawn[0] != drawn[1]  # 1 in 2^32 of a false alarm
    task = generate(system, user, seed=0)
    assert task["data"]["seed"] == 0
    assert get_task(system, user, task["id"]).json()["data"]["seed"] == 0


def test_defaults_fill_what_the_request_leaves_out(system: System, user: Account) -> None:
    task = generate(system, user)
    data = task["data"]
    assert (data["num_inference_steps"], data["guidance_scale"], data["scheduler"], data["width"],
            data["height"], data["batch_size"], data["negative_prompt"]) == (
        20, 7.5, "DPMSolverMultistep", 512, 512, 1, "")
    assert task["name"] == "a red fox in snow" and task["public"] is True


BAD: list[tuple[dict[str, Any], str]] = [
    ({"prompt": None}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "x" * 4001}, "prompt"),
    ({"prompt": "a\x00b"}, "prompt"),
    ({"negative_prompt": 5}, "negative_prompt"),
    ({"num_inference_steps": 0}, "num_inference_steps"),
    ({"num_inference_steps": 501}, "num_inference_steps"),
    ({"num_inference_steps": 20.5}, "num_inference_steps"),
    ({"guidance_scale": 0.5}, "guidance_scale"),
    ({"guidance_scale": 21}, "guidance_scale"),
    ({"scheduler": "Euler a"}, "scheduler"),
    ({"seed": 2**32}, "seed"),
    ({"seed": -2}, "seed"),
    ({"width": 500}, "width"),
    ({"height": 56}, "height"),
    ({"width": 1032}, "width"),  # over the configured max side (1024)
    ({"width": 1024, "height": 1024}, "width"),  # over the pixel budget (768 x 768)
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 9}, "batch_size"),
    ({"strength": 0.5}, "strength"),
    ({"from_image": 1, "strength": 1.5}, "strength"),
    ({"from_image": 123456789}, "from_image"),
    ({"from_image": "https://example.com/cat.png"}, "from_image"),
    ({"from_image": "/api/blobs/../../etc/passwd"}, "from_image"),
    ({"model_id": 123456789}, "model_id"),
    ({"loras": [{"model_id": 123456789}]}, "loras.0.model_id"),
    ({"loras": [{"model_id": 1, "weight": 3}]}, "loras.0.weight"),
    ({"public": "yes"}, "public"),
    ({"tags": ["a,b" * 100]}, "tags"),
    ({"sampler": "DDIM"}, "sampler"),
    ({"status": "running"}, "status"),
]


@pytest.mark.parametrize(("fields", "field"), BAD, ids=[f"{f}-{n}" for n, (_, f) in enumerate(BAD)])
def test_bad_input_is_422_naming_the_field_and_stores_nothing(system: System, user: Account,
                                                              fields: dict[str, Any], field: str) -> None:
    with client_of(system, user) as client:
        answer = client.post("/api/images", json={"prompt": "a cat", **fields})
        problem = assert_problem(answer, 422)
        assert ".".join(problem["errors"][0]["loc"]).startswith(f"body.{field}"), problem
        assert "X-Event-Sequence" not in answer.headers
    assert listed(system, user) == []


def test_a_body_that_is_not_json_is_422(system: System, user: Account) -> None:
    with client_of(system, user) as client:
        answer = client.post("/api/images", content=b"{prompt", headers={"Content-Type": "application/json"})
        assert "not valid JSON" in assert_problem(answer, 422)["detail"]


def test_models_must_be_visible_trained_and_of_the_right_type(system: System, user: Account) -> None:
    with client_of(system, user) as client:
        made = {kind: client.post("/api/models", json={"name": f"m-{kind}", "type": kind, "base_model": "SD1.5",
                                                        "data": {"oss": ["https://cdn.example.com/1.png"]}}).json()
                for kind in ("lora", "ckp", "hyper")}
        for fields, field, words in [
            ({"loras": [{"model_id": made["hyper"]["id"]}]}, "loras.0.model_id", "status success"),
            ({"loras": [{"model_id": made["ckp"]["id"]}]}, "loras.0.model_id", "only lora, ti and hyper"),
            ({"loras": [{"model_id": made["lora"]["id"]}]}, "loras.0.model_id", "status success"),
            ({"loras": [{"model_id": made["lora"]["id"]}, {"model_id": made["lora"]["id"]}]}, "loras.1.model_id",
             "twice"),
            ({"model_id": made["lora"]["id"]}, "model_id", "base (ckp)"),
            ({"model_id": made["ckp"]["id"]}, "model_id", "status success"),
        ]:
            problem = assert_problem(client.post("/api/images", json={"prompt": "x", **fields}), 422)
            assert problem["errors"][0]["loc"] == ["body", *field.split(".")], problem
            assert words in problem["detail"], problem
    other = new_account(system, "other")
    with client_of(system, other) as client:
        private = client.post("/api/models", json={"name": "mine", "type": "lora", "base_model": "SD1.5",
                                                   "public": False,
                                                   "data": {"oss": ["https://cdn.example.com/1.png"]}}).json()
    with client_of(system, user) as client:
        problem = assert_problem(client.post("/api/images", json={
            "prompt": "x", "loras": [{"model_id": private["id"]}]}), 422)
        assert "that you can see" in problem["detail"]


def test_img2img_from_an_image_id_or_this_services_blob_url(system: System, user: Account) -> None:
    mine = upload_image(system, user, public=False)
    by_id = generate(system, user, from_image=mine["id"])
    assert (by_id["data"]["from_image"], by_id["data"]["strength"]) == (mine["id"], 0.75)
    assert "source_key" not in by_id["data"]
    by_url = generate(system, user, from_image=mine["url"], strength=0.3)
    assert (by_url["data"]["from_image"], by_url["data"]["strength"]) == (mine["url"], 0.3)
    stranger = new_account(system, "stranger")
    with client_of(system, stranger) as client:
        problem = assert_problem(client.post("/api/images", json={"prompt": "x", "from_image": mine["id"]}), 422)
        assert problem["errors"][0]["loc"] == ["body", "from_image"]


def test_the_cap_on_unfinished_tasks_holds_under_concurrent_requests(system: System, user: Account) -> None:
    def ask(_: int) -> int:
        with client_of(system, user) as client:
            answer = client.post("/api/images", json={"prompt": "many"})
            if answer.status_code == 429:
                assert int(answer.headers["Retry-After"]) > 0
                assert "unfinished tasks" in answer.json()["detail"]
            return answer.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(ask, range(8)))
    assert statuses == [202] * CAP + [429] * (8 - CAP)
    first = listed(system, user)[0]
    with client_of(system, user) as client:
        assert client.patch(f"/api/tasks/{first}", json={"status": "canceled"}).status_code == 200
        assert client.post("/api/images", json={"prompt": "one more"}).status_code == 202  # canceled frees a place
        assert client.post("/api/images", json={"prompt": "too many"}).status_code == 429


def test_cancel_by_owner_or_admin_only_and_finished_tasks_stay_finished(system: System, user: Account,
                                                                       admin: Account) -> None:
    task = generate(system, user)
    other = new_account(system, "other")
    with client_of(system, other) as client:
        assert_problem(client.patch(f"/api/tasks/{task['id']}", json={"status": "canceled"}), 404)
    with client_of(system, user) as client:
        assert_problem(client.patch(f"/api/tasks/{task['id']}", json={"status": "running"}), 422)
        assert_problem(client.patch(f"/api/tasks/{task['id']}", json={"status": "canceled", "progress": 5}), 422)
        answer = client.patch(f"/api/tasks/{task['id']}", json={"status": "canceled"})
        assert answer.status_code == 200 and answer.json()["status"] == "canceled"
        assert answer.json()["finished_at"] is not None and answer.json()["waiting_reason"] is None
        again = client.patch(f"/api/tasks/{task['id']}", json={"status": "canceled"})
        assert again.status_code == 200 and "X-Event-Sequence" not in again.headers
    second = generate(system, user)
    with client_of(system, admin) as client:
        assert client.patch(f"/api/tasks/{second['id']}", json={"status": "canceled"}).json()["status"] == "canceled"
    with client_of(system, user) as client:
        trail = client.get(f"/api/tasks/{second['id']}/events").json()
        assert lifecycle(trail) == ["TaskCreated", "TaskWaiting", "TaskCanceled"]
        assert trail[-1]["data"]["by_user_id"] == admin.id
    with client_of(system, other) as client:
        assert_problem(client.get(f"/api/tasks/{second['id']}/events"), 404)


def test_delete_cancels_an_unfinished_task_first_and_frees_its_place(system: System, user: Account) -> None:
    tasks = [generate(system, user) for _ in range(CAP)]
    with client_of(system, user) as client:
        assert client.post("/api/images", json={"prompt": "x"}).status_code == 429
        assert client.delete(f"/api/tasks/{tasks[0]['id']}").status_code == 204
        assert_problem(client.get(f"/api/tasks/{tasks[0]['id']}"), 404)
        assert lifecycle(client.get(f"/api/tasks/{tasks[0]['id']}/events").json()) == [
            "TaskCreated", "TaskWaiting", "TaskCanceled", "TaskDeleted"]
        assert client.post("/api/images", json={"prompt": "x"}).status_code == 202
    other = new_account(system, "other")
    with client_of(system, other) as client:
        assert_problem(client.delete(f"/api/tasks/{tasks[1]['id']}"), 404)


def test_tasks_are_seen_by_their_owner_and_admins_only(system: System, user: Account, admin: Account) -> None:
    task = generate(system, user)
    other = new_account(system, "other")
    assert_problem(get_task(system, other, task["id"]), 404)
    assert get_task(system, admin, task["id"]).status_code == 200
    assert task["id"] not in listed(system, other)
    assert task["id"] in listed(system, admin, user=user.id)
    with client_of(system, None) as client:
        assert_problem(client.get("/api/tasks"), 401)
        assert_problem(client.get(f"/api/tasks/{task['id']}"), 401)


def test_list_filters_status_type_tag_date_and_the_list_rules(system: System, user: Account) -> None:
    tag = f"T{uuid.uuid4().hex[:8]}"
    a = generate(system, user, tags=[tag])
    b = generate(system, user)
    with client_of(system, user) as client:
        client.patch(f"/api/tasks/{b['id']}", json={"status": "canceled"})
    assert listed(system, user) == [b["id"], a["id"]]
    assert listed(system, user, sort="date+") == [a["id"], b["id"]]
    assert listed(system, user, status="waiting") == [a["id"]]
    assert listed(system, user, status="canceled,waiting") == [b["id"], a["id"]]
    assert listed(system, user, tag=tag.lower()) == [a["id"]]
    assert listed(system, user, type="inference", date="2025+") == [b["id"], a["id"]]
    assert listed(system, user, type="train") == []
    with client_of(system, user) as client:
        for params, name in [({"status": "done"}, "status"), ({"public": "true"}, "public"),
                             ({"q": "fox"}, "q")]:
            problem = assert_problem(client.get("/api/tasks", params=params), 422)
            assert problem["errors"][0]["loc"] == ["query", name]


def test_a_repeated_idempotency_key_answers_the_same_task(system: System, user: Account) -> None:
    with client_of(system, user) as client:
        first = client.post("/api/images", json={"prompt": "once"}, headers={"Idempotency-Key": "k-1"})
        second = client.post("/api/images", json={"prompt": "once"}, headers={"Idempotency-Key": "k-1"})
        assert first.status_code == second.status_code == 202
        assert first.json()["id"] == second.json()["id"]
        assert first.json()["data"]["seed"] == second.json()["data"]["seed"]
    assert listed(system, user) == [first.json()["id"]]


def test_the_account_shows_unfinished_tasks_against_the_cap(system: System, user: Account) -> None:
    generate(system, user)
    generate(system, user)
    with client_of(system, user) as client:
        account = client.get("/api/account").json()
    assert account["unfinished_tasks"] == 2 and account["counts"]["tasks"] == 2
    assert account["quota"]["tasks"] == {"used": 2, "limit": CAP}
    assert account["gpu_seconds"] == 0
