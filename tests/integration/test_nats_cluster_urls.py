"""A comma-separated AIDRAW_NATS_URL (a cluster's nodes, as compose.yaml gives it) whose first server is down:
every part connects through the one that answers. The sync bridge in this process; then the real `aidraw api`,
`aidraw projector` (with its scheduler and run reports) and `aidraw runner` generating an image through it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aidraw.services import NatsServer, free_port
from events.store.bridge import NatsBridge, NatsConnectError
from events.store.stream import ensure_stream
from tests.accounts import new_account
from tests.catalog_accounts import client_of
from tests.image_support import eventually
from tests.system import System


def with_a_dead_node_first(url: str) -> str:
    return f"nats://127.0.0.1:{free_port()}, {url}"


def test_the_bridge_connects_through_the_node_that_answers(nats_server: NatsServer, stream_name: str) -> None:
    bridge = NatsBridge(with_a_dead_node_first(nats_server.url), connect_timeout=5)
    try:
        ensure_stream(bridge, stream_name, stream_name.lower())
        ack = bridge.run(bridge.js.publish(f"{stream_name.lower()}.x", b"{}", stream=stream_name))
        assert ack.stream == stream_name and ack.seq == 1
    finally:
        bridge.close()


def test_when_no_node_answers_each_is_named_without_its_password() -> None:
    dead = [f"nats://u:hunter22@127.0.0.1:{free_port()}" for _ in range(2)]
    with pytest.raises(NatsConnectError) as raised:
        NatsBridge(",".join(dead), connect_timeout=1)
    message = str(raised.value)
    assert message.startswith(f"cannot reach NATS at {dead[0].replace('u:hunter22', '***')},"
                              f"{dead[1].replace('u:hunter22', '***')}: "), message
    assert "hunter22" not in message


@pytest.fixture(scope="module")
def system(nats_server: NatsServer, postgres_server: Any, servers_dir: Path) -> Iterator[System]:
    number = os.getpid() * 1000 + 983
    url = postgres_server.create_database(f"cluster_{number}")
    sut = System(with_a_dead_node_first(nats_server.url), url, f"C{number}", servers_dir / f"cluster-{number}",
                 runner=True, extra_env={"AIDRAW_RUNNER_NAME": "cluster-runner"}).start()
    yield sut
    sut.stop()


def test_api_projectors_scheduler_and_runner_work_through_the_live_node(system: System) -> None:
    who = new_account(system, "cluster")  # the API wrote the event, the projector made the account readable
    with client_of(system, who) as client:
        def runner_online() -> bool:
            listed = client.get("/api/servers").json()["list"]
            return any(s["name"] == "cluster-runner" and s["status"] == "online" for s in listed)

        assert eventually(runner_online, timeout=120), (client.get("/api/servers").json(), system.log("runner"))
        answer = client.post("/api/images", json={"prompt": "a red boat", "width": 64, "height": 64,
                                                  "num_inference_steps": 2, "seed": 5})
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["id"]

        def finished() -> bool:
            return client.get(f"/api/tasks/{task_id}").json()["status"] in ("success", "error", "canceled")

        assert eventually(finished, timeout=120), system.log("runner") + system.log("projector")
        task = client.get(f"/api/tasks/{task_id}").json()
    assert task["status"] == "success" and task["server_name"] == "cluster-runner", task
    assert len(task["result"]["image_ids"]) == 1
