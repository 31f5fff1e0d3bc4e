"""Generation with models, end to end with a real `aidraw runner` (the tiny model on CPU): a LoRA and a textual
inversion trained a few steps, their files in the blob store and recorded by `store_artefact`, change the image,
and the base gives its old pixels after; a base model an admin registered (`aidraw base register`) runs on the
runner that serves its capability, and so does a user's checkpoint (one original-layout file) derived from it;
a model file gone from the store fails the task with a reason."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from command.app import CommandApp
from command.models import Model
from gpu_runner.tiny_model import ensure_tiny_model
from gpu_runner.training import train
from infra.settings import Settings
from infra.storage import blob_key
from infra.storage.local import LocalBlobStore
from tests.accounts import Account, new_account
from tests.catalog_accounts import client_of
from tests.gpu_runner.checkpoint_support import write_checkpoint
from tests.gpu_runner.training_support import four_images, spec
from tests.integration.test_runner import finished, generate
from tests.system import System

SAFETENSORS = "application/x-safetensors"
CAPABILITY = "tiny-registered"


@pytest.fixture(scope="module")
def registered_base(servers_dir: Path) -> Path:
    """The tiny model (byte-identical to the runner's default one) under a name of its own."""
    return ensure_tiny_model(servers_dir / f"bases-{os.getpid()}" / CAPABILITY)


@pytest.fixture(scope="module")
def system(nats_server: Any, postgres_server: Any, servers_dir: Path, registered_base: Path) -> Iterator[System]:
    number = os.getpid() * 1000 + 955
    url = postgres_server.create_database(f"genmodels_{number}")
    sut = System(nats_server.url, url, f"G{number}", servers_dir / f"genmodels-{number}", runner=True,
                 extra_env={"AIDRAW_RUNNER_CAPABILITIES": f"default,{CAPABILITY}={registered_base}"}).start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def commands(system: System) -> Iterator[CommandApp]:
    app = CommandApp(Settings(stream_name=system.stream, subject_prefix=system.prefix), system.nats_url)
    yield app
    app.close()


@pytest.fixture(scope="module")
def user(system: System) -> Account:
    return new_account(system, "models")


@pytest.fixture(scope="module")
def artefacts(registered_base: Path) -> dict[str, bytes]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {"lora": train(spec(registered_base, "lora", steps=4, learning_rate=1e-2), four_images()).artefact,
                "ti": train(spec(registered_base, "ti", steps=4, learning_rate=5e-2), four_images()).artefact,
                "hyper": train(spec(registered_base, "hyper", steps=2), four_images()).artefact}
    finally:
        torch.set_num_threads(threads)


def new_model(system: System, who: Account, kind: str, **fields: Any) -> int:
    with client_of(system, who) as client:
        answer = client.post("/api/models", json={"name": f"m-{kind}", "type": kind, "base_model": "SD1.5",
                                                  "trigger_words": "zqx", "public": False,
                                                  "data": {"oss": ["https://cdn.example.com/1.png"]}, **fields})
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])


def stored_model(system: System, commands: CommandApp, who: Account, kind: str, artefact: bytes,
                 **fields: Any) -> int:
    """A model whose file is in the blob store, recorded as training and uploads record it."""
    number = new_model(system, who, kind, **fields)
    key = LocalBlobStore(system.data_dir / "blobs").put(artefact, SAFETENSORS)
    model = commands.load(Model, "model", number)
    model.store_artefact(key, len(artefact), "trained")
    commands.store(model)
    return number


def image_of(system: System, who: Account, **fields: Any) -> tuple[np.ndarray, str]:
    """The pixels and the `parameters` text of the one image a generation made."""
    task = finished(system, who, generate(system, who, prompt="zqx style", seed=99, **fields))
    assert task["status"] == "success", task
    with client_of(system, who) as client:
        image = client.get(f"/api/images/{task['result']['image_ids'][0]}").json()
        png = Image.open(io.BytesIO(client.get(image["url"]).content))
    return np.asarray(png.convert("RGB")).astype(np.int16), str(png.info["parameters"])


def test_a_trained_lora_and_ti_change_the_image_and_the_base_comes_back(
        system: System, commands: CommandApp, user: Account, artefacts: dict[str, bytes]) -> None:
    lora = stored_model(system, commands, user, "lora", artefacts["lora"])
    ti = stored_model(system, commands, user, "ti", artefacts["ti"])
    plain, _ = image_of(system, user)
    with_lora, lora_text = image_of(system, user, loras=[{"model_id": lora, "weight": 1.0}])
    with_ti, ti_text = image_of(system, user, loras=[{"model_id": ti}])
    after, _ = image_of(system, user)
    assert np.abs(with_lora - plain).max() > 1
    assert np.abs(with_ti - plain).max() > 1
    assert np.array_equal(after, plain)
    assert f"<lora:model-{lora}:1>" in lora_text and "Lora hashes" in lora_text
    assert f"model-{ti}: " in ti_text and "TI hashes" in ti_text


def test_the_recipe_carries_the_adapters_and_the_images_carry_the_request(
        system: System, commands: CommandApp, user: Account, artefacts: dict[str, bytes]) -> None:
    lora = stored_model(system, commands, user, "lora", artefacts["lora"])
    task = finished(system, user, generate(system, user, loras=[{"model_id": lora, "weight": 0.5}]))
    [adapter] = task["data"]["adapters"]
    assert adapter == {"model_id": lora, "weight": 0.5, "type": "lora", "name": f"model-{lora}",
                       "blob_key": commands.load(Model, "model", lora).model_path}
    with client_of(system, user) as client:
        image = client.get(f"/api/images/{task['result']['image_ids'][0]}").json()
    assert image["loras"] == [{"model_id": lora, "weight": 0.5}]  # the request, no blob keys


def test_a_hypernetwork_model_is_accepted_in_loras(
        system: System, commands: CommandApp, user: Account, artefacts: dict[str, bytes]) -> None:
    hyper = stored_model(system, commands, user, "hyper", artefacts["hyper"])
    task = finished(system, user, generate(system, user, loras=[{"model_id": hyper, "weight": 1.0}]))
    assert task["status"] == "success", task


def test_a_model_file_gone_from_the_store_fails_the_task_with_a_reason(
        system: System, commands: CommandApp, user: Account) -> None:
    number = new_model(system, user, "lora")
    model = commands.load(Model, "model", number)
    model.store_artefact(blob_key("cd" * 32, SAFETENSORS), 1234, "uploaded")
    commands.store(model)
    task = finished(system, user, generate(system, user, loras=[{"model_id": number}]))
    assert task["status"] == "error"
    assert f"the file of LoRA model {number} is no longer stored; upload or retrain it" in task["error"], task


def register(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aidraw.cli", "base", "register", *args], env=system.env,
                          capture_output=True, text=True, timeout=60)


def test_a_registered_base_model_is_public_system_owned_and_runs_on_its_capability(
        system: System, user: Account) -> None:
    done = register(system, "--name", "Tiny registered", "--capability", CAPABILITY, "--base-model", "SD1.5")
    assert done.returncode == 0, done.stderr
    number = int(re.search(r"model id (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    with client_of(system, user) as client:
        shown = client.get(f"/api/models/{number}")
        assert shown.status_code == 200, shown.text
    model = shown.json()
    assert (model["type"], model["status"], model["public"], model["user_id"]) == ("ckp", "success", True, 0)
    default, default_text = image_of(system, user)
    chosen, chosen_text = image_of(system, user, model_id=number)
    assert f"Model: {CAPABILITY}" in chosen_text and f"Model: {CAPABILITY}" not in default_text
    assert np.array_equal(chosen, default)  # the same weights under another name: the same pixels


def test_a_users_checkpoint_runs_on_its_bases_capability_as_a_single_file(
        system: System, commands: CommandApp, user: Account, registered_base: Path, tmp_path: Path) -> None:
    done = register(system, "--name", "Tiny again", "--capability", CAPABILITY, "--base-model", "SD1.5")
    base_id = int(re.search(r"model id (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
    data = write_checkpoint(registered_base, tmp_path / "mine.safetensors")
    on_base = stored_model(system, commands, user, "ckp", data, source=base_id)
    on_default = stored_model(system, commands, user, "ckp", data)
    default, _ = image_of(system, user)
    for number, capability in ((on_base, CAPABILITY), (on_default, "default")):
        task = finished(system, user, generate(system, user, model_id=number))
        assert task["status"] == "success", task
        assert task["data"]["capability"] == capability
        assert task["data"]["checkpoint_key"] == commands.load(Model, "model", number).model_path
        chosen, text = image_of(system, user, model_id=number)
        assert f"Model: model-{number}" in text
        assert np.array_equal(chosen, default)  # the same weights, read from the original single-file layout
    chained = stored_model(system, commands, user, "ckp", data, source=on_base)  # trained from the checkpoint
    with client_of(system, user) as client:
        answer = client.post("/api/images", json={"prompt": "x", "model_id": chained})
        assert answer.status_code == 202, answer.text
        assert answer.json()["data"]["capability"] == CAPABILITY
        client.patch(f"/api/tasks/{answer.json()['id']}", json={"status": "canceled"})


def test_registration_refuses_a_capability_that_cannot_name_a_queue(system: System) -> None:
    done = register(system, "--name", "x", "--capability", "a.b", "--base-model", "SD1.5")
    assert done.returncode == 2 and "capability 'a.b' is not usable" in done.stderr


def test_a_textual_inversion_without_a_trigger_word_is_refused_naming_it(
        system: System, commands: CommandApp, user: Account, artefacts: dict[str, bytes]) -> None:
    number = stored_model(system, commands, user, "ti", artefacts["ti"], trigger_words="")
    with client_of(system, user) as client:
        answer = client.post("/api/images", json={"prompt": "x", "loras": [{"model_id": number}]})
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["errors"][0]["loc"] == ["body", "loras", "0", "model_id"]
    assert "has no trigger word" in problem["detail"]
