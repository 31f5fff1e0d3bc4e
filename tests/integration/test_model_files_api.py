"""Bring your own model over HTTP: a `.safetensors` upload becomes a `success` model at once; hostile files are
422/413 and store nothing; the file downloads for those who may see the model (kohya's layout on request)."""

from __future__ import annotations

import json
import os
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from safetensors.numpy import load

from tests.catalog_accounts import People, Person, assert_problem, client_of, make_people
from tests.conftest import _counter
from tests.model_files import K, checkpoint, embedding, hypernetwork, kohya_lora, lora, safetensors
from tests.system import System

MAX_BYTES = 2**20  # AIDRAW_MODEL_UPLOAD_MAX_BYTES here, so "too large" is cheap to send


@pytest.fixture(scope="module")
def system(nats_server, postgres_server, servers_dir: Path) -> Iterator[System]:  # type: ignore[no-untyped-def]
    number = next(_counter)
    stream = f"S{os.getpid()}_{number}"
    url = postgres_server.create_database(f"sys_{os.getpid()}_{number}")
    sut = System(nats_server.url, url, stream, servers_dir / f"system-{number}",
                 extra_env={"AIDRAW_MODEL_UPLOAD_MAX_BYTES": str(MAX_BYTES)}).start()
    yield sut
    sut.stop()


@pytest.fixture(scope="module")
def people(system: System) -> People:
    return make_people(system)


def upload(system: System, who: Person | None, data: bytes, filename: str = "mine.safetensors",
           **fields: str) -> httpx.Response:
    form = {"type": "lora", "base_model": "SD1.5", **fields}
    with client_of(system, who) as client:
        return client.post("/api/models", files={"file": (filename, data, "application/octet-stream")}, data=form)


def uploaded(system: System, who: Person, data: bytes, **fields: str) -> dict[str, Any]:
    answer = upload(system, who, data, name=f"m-{uuid.uuid4().hex[:8]}", **fields)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def stored_files(system: System) -> set[Path]:
    return set(system.data_dir.rglob("*.safetensors"))


def my_models(system: System, who: Person) -> list[int]:
    with client_of(system, who) as client:
        answer = client.get("/api/models", params={"user": who.id, "pageSize": 100})
        return [m["id"] for m in answer.json()["list"]]


@pytest.mark.parametrize(("model_type", "data"), [
    ("lora", lora()), ("lora", kohya_lora()), ("ti", embedding()), ("hyper", hypernetwork()), ("ckp", checkpoint())])
def test_an_upload_of_each_type_is_a_success_model_at_once(system: System, people: People, model_type: str,
                                                          data: bytes) -> None:
    answer = upload(system, people.alice, data, filename="Night Style.safetensors", type=model_type,
                    trigger_words="nstyle", tags="uploaded, style", public="false")
    assert answer.status_code == 201, answer.text
    model = answer.json()
    assert answer.headers["Location"] == f"/api/models/{model['id']}"
    assert {k: model[k] for k in ("name", "type", "base_model", "status", "progress", "model_path", "public",
                                   "trigger_words", "tags", "dataset")} == {
        "name": "Night Style", "type": model_type, "base_model": "SD1.5", "status": "success", "progress": 100,
        "model_path": f"/api/models/{model['id']}/file", "public": False, "trigger_words": "nstyle",
        "tags": ["uploaded", "style"], "dataset": {"oss": [], "images": [], "choices": [],
                                                               "repeats": 1}}
    with client_of(system, people.alice) as client:
        shown = client.get(f"/api/models/{model['id']}", headers={"X-Event-Sequence": answer.headers[
            "X-Event-Sequence"]}).json()
        assert shown["status"] == "success" and shown["model_path"] == model["model_path"]
        trail = client.get(f"/api/models/{model['id']}/events").json()
        kinds = [e["type"] for e in (trail["list"] if isinstance(trail, dict) else trail)]
        assert kinds[:2] == ["ModelCreated", "ModelArtefactStored"]
        download = client.get(model["model_path"])
        assert download.status_code == 200 and download.content == data


def _header_claiming(entries: dict[str, Any], data: bytes) -> bytes:
    body = json.dumps(entries).encode()
    return struct.pack("<Q", len(body)) + body + data


HOSTILE = {
    "a renamed pickle": (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.", {}, "not a safetensors file"),
    "a torch zip": (b"PK\x03\x04" + b"\0" * 64, {}, "header length"),
    "a truncated file": (lora()[:-100], {}, "outside the file"),
    "a header claiming huge tensors": (_header_claiming(
        {f"unet.{K}.lora_A.weight": {"dtype": "F32", "shape": [2**31, 2**31], "data_offsets": [0, 16]}},
        b"\0" * 16), {}, "does not match"),
    "a 1 GB header length": (struct.pack("<Q", 2**30) + b"{}", {}, "header length"),
    "an embedding sent as a LoRA": (embedding(), {}, "not a LoRA"),
    "a LoRA for SD2 sent for SD1.5": (lora(1024), {}, "another base"),
    "a LoRA sent as a checkpoint": (lora(), {"type": "ckp"}, "not a full checkpoint"),
    "an empty file": (b"", {}, "shorter than"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_or_mismatched_file_is_422_and_stores_nothing(system: System, people: People, case: str) -> None:
    data, fields, reason = HOSTILE[case]
    before, models = stored_files(system), my_models(system, people.bob)
    problem = assert_problem(upload(system, people.bob, data, **fields), 422)
    assert reason in problem["detail"] and "send a .safetensors file" in problem["detail"]
    assert stored_files(system) == before and my_models(system, people.bob) == models


def test_too_large_is_413_and_bad_fields_are_422_naming_what_to_send(system: System, people: People) -> None:
    before = stored_files(system)
    big = safetensors({f"unet.{K}.lora_A.weight": ("F32", [4, MAX_BYTES // 16 + 1])})
    assert "MODEL_UPLOAD_MAX_BYTES" in assert_problem(upload(system, people.bob, big), 413)["detail"]
    with client_of(system, people.bob) as client:
        assert_problem(client.post("/api/models", content=b"x" * (MAX_BYTES * 2), headers={
            "content-type": "multipart/form-data; boundary=b"}), 413)
    assert_problem(upload(system, people.bob, lora(), type="vae"), 422)
    assert_problem(upload(system, people.bob, lora(), base_model="SDXL"), 422)
    assert_problem(upload(system, people.bob, lora(), colour="red"), 422)
    assert_problem(upload(system, people.bob, lora(), public="maybe"), 422)
    assert_problem(upload(system, people.bob, lora(), source="999999"), 422)  # no such model to derive from
    assert_problem(upload(system, None, lora()), 401)
    assert stored_files(system) == before


def test_the_file_downloads_for_the_owner_admins_and_everyone_once_public(system: System, people: People) -> None:
    data = lora()
    model = uploaded(system, people.alice, data)
    path = model["model_path"]
    with client_of(system, people.alice) as client:
        answer = client.get(path)
        assert answer.status_code == 200 and answer.content == data
        assert answer.headers["content-type"] == "application/x-safetensors"
        assert answer.headers["content-disposition"].startswith(f'attachment; filename="{model["name"]}.safetensors"')
        etag = answer.headers["etag"]
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert client_of(system, people.admin).get(path).status_code == 200
    assert_problem(client_of(system, people.bob).get(path), 404)
    assert_problem(client_of(system, None).get(path), 404)
    with client_of(system, people.alice) as client:
        changed = client.patch(f"/api/models/{model['id']}", json={"public": True})
        assert changed.status_code == 200
    with client_of(system, None) as client:
        answer = client.get(path, headers={"X-Event-Sequence": changed.headers["X-Event-Sequence"]})
        assert answer.status_code == 200 and answer.content == data


def test_a_model_without_a_file_has_no_download(system: System, people: People) -> None:
    with client_of(system, people.alice) as client:
        model = client.post("/api/models", json={"name": "untrained", "type": "lora", "base_model": "SD1.5",
                                                 "data": {"oss": ["https://cdn.example.com/1.png"]}}).json()
        assert model["model_path"] is None
        assert "no file yet" in assert_problem(client.get(f"/api/models/{model['id']}/file"), 404)["detail"]


def test_a_lora_downloads_in_kohyas_layout_on_request(system: System, people: People) -> None:
    model = uploaded(system, people.alice, lora(rank=4))
    with client_of(system, people.alice) as client:
        answer = client.get(model["model_path"], params={"format": "kohya"})
        assert answer.status_code == 200
        assert int(answer.headers["content-length"]) == len(answer.content)
        assert answer.headers["etag"].endswith('-kohya"')
        tensors = load(answer.content)
        name = "lora_unet_" + K.replace(".", "_")
        assert set(tensors) == {f"{name}.lora_down.weight", f"{name}.lora_up.weight", f"{name}.alpha"}
        assert float(tensors[f"{name}.alpha"]) == 4.0
        kohya = uploaded(system, people.alice, kohya_lora())  # already kohya's: sent as it is
        assert client.get(kohya["model_path"], params={"format": "kohya"}).content == kohya_lora()
        ti = uploaded(system, people.alice, embedding(), type="ti")
        assert_problem(client.get(ti["model_path"], params={"format": "kohya"}), 422)


def test_an_upload_repeated_with_its_idempotency_key_answers_the_first_model(system: System, people: People) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    with client_of(system, people.alice) as client:
        answers = [client.post("/api/models", headers=key, data={"type": "ti", "base_model": "SD1.5"},
                               files={"file": ("emb.safetensors", embedding(), "application/octet-stream")})
                   for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert answers[0].json()["name"] == "emb"
