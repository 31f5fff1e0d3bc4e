"""Training through the whole system (docs/training.md): the real API, projector and `aidraw runner` (the tiny
model on CPU). A model set to `ready` trains, its socket sees progress with loss, learning rate and a sample,
then `success` and 1000; its file downloads as a LoRA that generation then uses; a cancel while it trains puts the
model back, stores nothing and leaves the runner free."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from infra.storage.local import LocalBlobStore
from tests.accounts import Account, new_account
from tests.catalog_accounts import client_of
from tests.image_support import eventually
from tests.live_support import open_socket, receive
from tests.system import System
from tests.training_runner import striped_png

pytestmark = pytest.mark.slow

TRAINING = {"steps": 8, "resolution": 32, "batch_size": 4, "learning_rate": 1e-3, "checkpoint_every": 4}


@pytest.fixture(scope="module")
def system(nats_server: Any, postgres_server: Any, servers_dir: Path) -> Iterator[System]:
    number = os.getpid() * 1000 + 917
    url = postgres_server.create_database(f"trainrun_{number}")
    sut = System(nats_server.url, url, f"T{number}", servers_dir / f"trainrun-{number}", runner=True,
                 extra_env={"AIDRAW_RUNNER_TRAIN_SAMPLES": "2", "OMP_NUM_THREADS": "1"}).start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def user(system: System) -> Account:
    return new_account(system, "trainer")


def model_of(system: System, who: Account, model_type: str = "lora", **training: Any) -> dict[str, Any]:
    """A model of `who` over four striped images of theirs."""
    with client_of(system, who) as client:
        images = []
        for n in range(4):
            answer = client.post("/api/images", files={"file": (f"s{n}.png", striped_png(n), "image/png")},
                                 data={"public": "false"})
            assert answer.status_code == 201, answer.text
            images.append(answer.json()["id"])
        answer = client.post("/api/models", json={
            "name": f"m-{uuid.uuid4().hex[:8]}", "type": model_type, "base_model": "SD1.5", "trigger_words": "zqx",
            "data": {"images": images}, "training": TRAINING | training})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def until_closed(ws: Any, timeout: float = 300) -> tuple[list[dict[str, Any]], int]:
    from websockets.exceptions import ConnectionClosed

    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            got.append(receive(ws, timeout=max(0.1, deadline - time.monotonic())))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return got, closed.rcvd.code


def stored_keys(system: System) -> set[str]:
    return set(LocalBlobStore(system.data_dir / "blobs").keys_before(time.time() + 60))


def generated(client: httpx.Client, prompt: str, **recipe: Any) -> dict[str, Any]:
    """A small generation, once it succeeded (its task)."""
    made = client.post("/api/images", json={"prompt": prompt, "width": 64, "height": 64, "num_inference_steps": 4,
                                            **recipe})
    assert made.status_code == 202, made.text
    task_id = made.json()["id"]
    assert eventually(lambda: client.get(f"/api/tasks/{task_id}").json()["status"] in {"success", "error"},
                      timeout=60)
    task = dict(client.get(f"/api/tasks/{task_id}").json())
    assert task["status"] == "success", task
    return task


def picture(client: httpx.Client, task: dict[str, Any]) -> bytes:
    """The pixels of a finished generation's one image."""
    answer = client.get(task["result"]["images"][0]["url"])
    assert answer.status_code == 200, answer.text
    return Image.open(io.BytesIO(answer.content)).convert("RGB").tobytes()


def safetensors_keys(data: bytes) -> list[str]:
    (length,) = struct.unpack("<Q", data[:8])
    return [k for k in json.loads(data[8:8 + length]) if k != "__metadata__"]


def test_a_lora_trains_live_downloads_and_generates(system: System, user: Account) -> None:
    model = model_of(system, user)
    with client_of(system, user) as client:
        asked = client.patch(f"/api/models/{model['id']}", json={"status": "ready"})
        assert asked.status_code == 200, asked.text
        with open_socket(system, f"/api/models/{model['id']}", user.token, max_queue=None) as ws:
            messages, code = until_closed(ws)
        done = client.get(f"/api/models/{model['id']}").json()
    assert code == 1000, messages
    statuses = [m["status"] for m in messages]
    assert statuses[-1] == "success" and "running" in statuses, (statuses, system.log("runner"))
    steps = [m for m in messages if "tick" in m]
    assert steps and all({"loss", "learning_rate"} <= set(m["data"]["detail"]) for m in steps), steps
    previews = [m["data"]["preview"] for m in steps if "preview" in m["data"]]
    assert previews and previews[0].startswith("data:image/jpeg;base64,")
    assert done["status"] == "success" and done["model_path"] and done["progress"] == 100, done
    assert done["image"], done  # the cover

    with client_of(system, user) as client:
        file = client.get(f"/api/models/{model['id']}/file")
        assert file.status_code == 200, file.text
        keys = safetensors_keys(file.content)
        assert keys and all(k.startswith("unet.") and ".lora" in k for k in keys), keys[:5]
        with_lora = generated(client, "zqx", loras=[{"model_id": model["id"], "weight": 1.0}], seed=5)
        without = generated(client, "zqx", seed=5)
        assert picture(client, with_lora) != picture(client, without)  # the trained file was applied
        assert picture(client, generated(client, "zqx", seed=5)) == picture(client, without)  # not by chance

        # A retrain keeps the file until the new one is stored, then serves the new one, with a new cover.
        again = client.patch(f"/api/models/{model['id']}", json={"status": "ready", "training": TRAINING | {
            "learning_rate": 1e-2}})
        assert again.status_code == 200 and again.json()["model_path"] == done["model_path"], again.text
        assert client.get(f"/api/models/{model['id']}/file").content == file.content
        assert eventually(lambda: client.get(f"/api/models/{model['id']}").json()["status"] == "success"
                          and client.get(f"/api/models/{model['id']}").json()["image"] != done["image"], timeout=120)
        assert client.get(f"/api/models/{model['id']}/file").content != file.content


def test_a_cancel_while_training_puts_the_model_back_stores_nothing_and_frees_the_runner(
        system: System, user: Account) -> None:
    model = model_of(system, user, steps=2000, checkpoint_every=1)
    before = stored_keys(system)
    with client_of(system, user) as client:
        assert client.patch(f"/api/models/{model['id']}", json={"status": "ready"}).status_code == 200
        with open_socket(system, f"/api/models/{model['id']}", user.token, max_queue=None) as ws:
            seen: list[dict[str, Any]] = []
            while not (seen and "tick" in seen[-1] and seen[-1]["data"]["step"] >= 2):
                seen.append(receive(ws, timeout=120))
            task_id = client.get(f"/api/models/{model['id']}").json()["task_id"]
            canceled = client.patch(f"/api/models/{model['id']}", json={"status": "canceled"})
            assert canceled.status_code == 200, canceled.text
            rest, code = until_closed(ws, timeout=60)
        assert code == 1000 and rest[-1]["status"] == "initial", rest[-3:]
        back = client.get(f"/api/models/{model['id']}").json()
        assert back["status"] == "initial" and back["model_path"] is None, back
        assert eventually(lambda: client.get(f"/api/tasks/{task_id}").json()["status"] == "canceled", timeout=30)
        assert client.get(f"/api/models/{model['id']}/file").status_code == 404
        assert eventually(lambda: stored_keys(system) == before, timeout=30)  # its checkpoint removed too
        # The runner stopped at the next step and takes the next task: a generation succeeds.
        made = client.post("/api/images", json={"prompt": "a boat", "width": 64, "height": 64,
                                                "num_inference_steps": 4})
        assert made.status_code == 202, made.text
        task = made.json()["id"]
        assert eventually(lambda: client.get(f"/api/tasks/{task}").json()["status"] in {"success", "error"},
                          timeout=60)
        assert client.get(f"/api/tasks/{task}").json()["status"] == "success", system.log("runner")
    assert "resuming" not in system.log("runner")


def test_a_textual_inversion_trains_downloads_and_generates(system: System, user: Account) -> None:
    model = model_of(system, user, "ti", learning_rate=1e-1, num_vectors=2)
    with client_of(system, user) as client:
        assert client.patch(f"/api/models/{model['id']}", json={"status": "ready"}).status_code == 200
        assert eventually(lambda: client.get(f"/api/models/{model['id']}").json()["status"] in {"success", "error"},
                          timeout=240)
        done = client.get(f"/api/models/{model['id']}").json()
        assert done["status"] == "success" and done["image"], (done, system.log("runner"))
        file = client.get(f"/api/models/{model['id']}/file")
        assert file.status_code == 200 and safetensors_keys(file.content) == ["emb_params"]
        made = client.post("/api/images", json={"prompt": "a zqx boat", "width": 64, "height": 64,
                                                "num_inference_steps": 4,
                                                "loras": [{"model_id": model["id"], "weight": 1.0}]})
        assert made.status_code == 202, made.text
        task = made.json()["id"]
        assert eventually(lambda: client.get(f"/api/tasks/{task}").json()["status"] in {"success", "error"},
                          timeout=60)
        assert client.get(f"/api/tasks/{task}").json()["status"] == "success", (
            client.get(f"/api/tasks/{task}").json(), system.log("runner"))


def test_with_two_runners_generation_keeps_flowing_while_one_trains(system: System, user: Account) -> None:
    log = open(system.data_dir / "runner2.log", "ab")  # noqa: SIM115 - the child owns it
    second = subprocess.Popen([sys.executable, "-m", "aidraw.cli", "runner"], stdout=log, stderr=subprocess.STDOUT,
                              env=dict(system.env, AIDRAW_RUNNER_NAME="second-runner"))
    log.close()
    try:
        with client_of(system, user) as client:  # the second runner is up once it has served a generation
            assert eventually(lambda: generated(client, "warm up")["server_name"] == "second-runner", timeout=180), \
                (system.data_dir / "runner2.log").read_text()[-3000:]
        model = model_of(system, user, steps=4000, checkpoint_every=4000)
        model_id = model["id"]
        with client_of(system, user) as client:
            assert client.patch(f"/api/models/{model['id']}", json={"status": "ready"}).status_code == 200
            assert eventually(lambda: client.get(f"/api/models/{model['id']}").json()["status"] == "running",
                              timeout=120)
            trainer = client.get(f"/api/tasks/{client.get(f'/api/models/{model_id}').json()['task_id']}").json()
            # One after the other, all while the training runs.
            servers = [generated(client, f"boat {n}")["server_name"] for n in range(3)]
            assert client.get(f"/api/models/{model['id']}").json()["status"] == "running"
            assert set(servers) - {trainer["server_name"]}, (servers, trainer["server_name"])  # the free one served
            assert client.patch(f"/api/models/{model['id']}", json={"status": "canceled"}).status_code == 200
            assert eventually(lambda: client.get(f"/api/models/{model['id']}").json()["status"] == "initial")
    finally:
        second.terminate()
        second.wait(30)


def test_the_train_tasks_socket_sees_the_training_too(system: System, user: Account) -> None:
    model = model_of(system, user, steps=30)
    with client_of(system, user) as client:
        assert client.patch(f"/api/models/{model['id']}", json={"status": "ready"}).status_code == 200
        assert eventually(lambda: client.get(f"/api/models/{model['id']}").json()["task_id"] is not None, timeout=30)
        task_id = client.get(f"/api/models/{model['id']}").json()["task_id"]
        with open_socket(system, f"/api/tasks/{task_id}", user.token, max_queue=None) as ws:
            messages, code = until_closed(ws)
    steps = [m for m in messages if "tick" in m]
    assert code == 1000 and messages[-1]["status"] == "success", messages[-3:]
    assert messages[-1]["data"]["result"]["model_path"] == f"/api/models/{model['id']}/file"
    assert steps and all(m["data"]["steps"] == 30 and "loss" in m["data"]["detail"] for m in steps), steps
    assert any("preview" in m["data"] for m in steps)
