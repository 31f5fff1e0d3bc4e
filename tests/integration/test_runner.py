"""The whole generation path with a real `aidraw runner` (the tiny model on CPU): POST /api/images -> scheduler ->
work queue -> runner -> stored PNG, thumbnail and descriptor -> runner reports -> task success and its images;
a cancel that stops a running task at its next step; img2img from an image id; progress on its subject."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from PIL import Image

from tests.accounts import Account, new_account
from tests.catalog_accounts import client_of
from tests.image_support import eventually
from tests.system import System

SMALL = {"width": 64, "height": 64, "num_inference_steps": 4, "scheduler": "K_EULER"}


@pytest.fixture(scope="module")
def system(nats_server: Any, postgres_server: Any, servers_dir: Path) -> Iterator[System]:
    """This module's own system with a runner (others must not have their released tasks taken)."""
    number = os.getpid() * 1000 + 977
    stream = f"R{number}"
    url = postgres_server.create_database(f"run_{number}")
    sut = System(nats_server.url, url, stream, servers_dir / f"runner-{number}", runner=True,
                 extra_env={"AIDRAW_RUNNER_NAME": "test-runner"}).start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def user(system: System) -> Account:
    return new_account(system, "gen")


def generate(system: System, who: Account, **fields: Any) -> int:
    with client_of(system, who) as client:
        answer = client.post("/api/images", json={"prompt": "a red boat", **SMALL, **fields})
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])


def finished(system: System, who: Account, task_id: int, timeout: float = 120) -> dict[str, Any]:
    with client_of(system, who) as client:
        def done() -> bool:
            return client.get(f"/api/tasks/{task_id}").json()["status"] in ("success", "error", "canceled")

        assert eventually(done, timeout=timeout), client.get(f"/api/tasks/{task_id}").json() | {
            "runner log": system.log("runner")}
        return dict(client.get(f"/api/tasks/{task_id}").json())


def test_a_request_becomes_stored_images_with_their_recipe(system: System, user: Account) -> None:
    task_id = generate(system, user, prompt="a red boat, (sunset:1.2)", seed=1234, batch_size=2,
                       negative_prompt="blurry", tags=["boats"])
    task = finished(system, user, task_id)
    assert task["status"] == "success", task
    assert task["result"]["prompt_handling"] == "whole"
    assert task["server_name"] == "test-runner" and task["attempt"] == 1
    image_ids = task["result"]["image_ids"]
    assert len(image_ids) == 2
    with client_of(system, user) as client:
        images = [client.get(f"/api/images/{i}").json() for i in image_ids]
        assert [i["seed"] for i in images] == [1234, 1235]
        for image in images:
            assert image["prompt"] == "a red boat, (sunset:1.2)"
            assert image["negative_prompt"] == "blurry"
            assert (image["width"], image["height"], image["num_inference_steps"]) == (64, 64, 4)
            assert image["scheduler"] == "K_EULER" and image["task_id"] == task_id
            png = client.get(image["url"])
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            parameters = Image.open(io.BytesIO(png.content)).info["parameters"]
            assert parameters.startswith("a red boat, (sunset:1.2)\nNegative prompt: blurry\n")
            assert f"Seed: {image['seed']}," in parameters and "Sampler: Euler" in parameters
            assert client.get(image["thumbnail_url"]).status_code == 200
        listed = client.get("/api/images", params={"user": user.id}).json()
        assert {i["id"] for i in listed["list"]} >= set(image_ids)


def test_img2img_from_an_image_id(system: System, user: Account) -> None:
    first = finished(system, user, generate(system, user, seed=7))
    source = first["result"]["image_ids"][0]
    task = finished(system, user, generate(system, user, from_image=source, strength=0.5, seed=8))
    assert task["status"] == "success", task
    with client_of(system, user) as client:
        image = client.get(f"/api/images/{task['result']['image_ids'][0]}").json()
    assert image["from_image"] == str(source) and image["seed"] == 8


def test_cancel_stops_a_running_task_and_progress_is_published(system: System, user: Account) -> None:
    seen: list[dict[str, Any]] = []

    async def scenario() -> int:
        nc = await nats.connect(system.nats_url)

        async def note(msg: Any) -> None:
            seen.append(json.loads(msg.data))

        await nc.subscribe(f"{system.prefix}_changed.tasks.*", cb=note)
        long_id = await asyncio.to_thread(generate, system, user, num_inference_steps=500, width=128, height=128)
        with client_of(system, user) as client:
            running = await asyncio.to_thread(eventually, lambda: any(
                s["id"] == long_id and s["preview"] for s in seen), 120)
            assert running, client.get(f"/api/tasks/{long_id}").json()
            answer = client.patch(f"/api/tasks/{long_id}", json={"status": "canceled"})
            assert answer.status_code == 200, answer.text
        after = await asyncio.to_thread(finished, system, user, await asyncio.to_thread(generate, system, user))
        assert after["status"] == "success"
        await nc.close()
        return long_id

    long_id = asyncio.run(scenario())
    with client_of(system, user) as client:
        task = client.get(f"/api/tasks/{long_id}").json()
    assert task["status"] == "canceled" and task["result"] is None
    steps = [s for s in seen if s["id"] == long_id]
    assert all(s["collection"] == "tasks" for s in steps)
    assert [s["tick"] for s in steps] == list(range(1, len(steps) + 1))
    assert max(s["step"] for s in steps) < steps[0]["steps"]  # stopped at a step, never finished
    preview = next(s["preview"] for s in steps if s["preview"])
    assert preview.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(preview.split(",", 1)[1]))).format == "JPEG"
