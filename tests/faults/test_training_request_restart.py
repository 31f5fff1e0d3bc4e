"""Training requests survive the process manager: requests made while the projector role (which runs the training
process manager) is killed are turned into exactly one task each once it is back."""

from __future__ import annotations

from tests.catalog_accounts import People, client_of
from tests.catalog_objects import upload_image
from tests.image_support import eventually
from tests.system import System


def test_requests_made_while_the_process_manager_is_down_each_become_one_task_when_it_is_back(
        system: System, people: People) -> None:
    models = []
    with client_of(system, people.alice) as client:
        for _ in range(3):
            images = [upload_image(system, people.alice, public=False)["id"] for _ in range(4)]
            made = client.post("/api/models", json={"name": "m", "type": "lora", "base_model": "SD1.5",
                                                    "data": {"images": images}})
            assert made.status_code == 201, made.text
            models.append(made.json()["id"])
    system.stop_role("projector", kill=True)
    try:
        with client_of(system, people.alice) as client:
            for model_id in models:
                asked = client.patch(f"/api/models/{model_id}", json={"status": "ready"})
                assert asked.status_code == 200 and asked.json()["status"] == "ready", asked.text
    finally:
        system.start_role("projector")
    with client_of(system, people.alice) as client:
        def all_waiting() -> bool:
            return all(client.get(f"/api/models/{m}").json()["status"] == "waiting" for m in models)

        assert eventually(all_waiting, timeout=60), [client.get(f"/api/models/{m}").json() for m in models]

        def train_tasks() -> list[dict]:  # the tasks read model is projected apart from the models one
            answer = client.get("/api/tasks", params={"user": people.alice.id, "type": "train", "pageSize": 100})
            return list(answer.json()["list"])

        assert eventually(lambda: len(train_tasks()) >= len(models), timeout=30)
        tasks = train_tasks()
        assert sorted(t["data"]["model_id"] for t in tasks) == sorted(models)  # one task per request
        assert {client.get(f"/api/models/{m}").json()["task_id"] for m in models} == {t["id"] for t in tasks}
