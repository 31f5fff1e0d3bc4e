"""A deleted account takes its belongings with it: the process manager deletes them through the ordinary
commands (each object's own Deleted event) and takes back the account's likes."""

from __future__ import annotations

import uuid

from tests.accounts import Account, new_account, new_admin
from tests.image_files import upload
from tests.image_support import blob_files, eventually
from tests.system import System


def _created(client: object, path: str, body: dict) -> dict:
    answer = client.post(path, json=body)  # type: ignore[attr-defined]
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _belongings(system: System, owner: Account) -> dict[str, int]:
    """One of everything an account can own, plus a like of someone else's image."""
    with system.client(owner.token) as client:
        picture = upload(client, fields={"public": "true", "name": f"mine-{uuid.uuid4().hex[:6]}"})
        assert picture.status_code == 201, picture.text
        image = picture.json()["id"]
        made = {
            "images": image,
            "params": _created(client, "/api/params", {"name": "p", "data": {"steps": 20}})["id"],
            "datasets": _created(client, "/api/datasets", {"name": "d", "items": {"images": [image]}})["id"],
            "choices": _created(client, "/api/choices", {"name": "c", "items": [{"image_id": image}]})["id"],
            "models": _created(client, "/api/models", {"name": "m", "type": "lora", "base_model": "SD1.5",
                                                       "data": {"images": [image]}})["id"],
        }
        task = client.post("/api/images", json={"prompt": "a task left waiting"})
        assert task.status_code == 202, task.text
        made["tasks"] = task.json()["id"]
    return made


def test_deleting_an_account_deletes_what_it_owned_and_takes_back_its_likes(system: System) -> None:
    dave, bob, admin = new_account(system, "dave"), new_account(system, "bob"), new_admin(system)
    made = _belongings(system, dave)
    kept = _belongings(system, bob)
    with system.client(bob.token) as client:
        bobs_image = kept["images"]
        # bob's collection holds dave's image next to his own
        mixed = _created(client, "/api/choices", {"name": "mixed", "items": [
            {"image_id": made["images"]}, {"image_id": bobs_image}]})["id"]
    with system.client(dave.token) as client:
        assert client.put(f"/api/images/{bobs_image}/like").status_code == 204
    with system.client(admin.token) as client:
        # the admin's read does not wait for dave's and bob's writes (read-your-writes is per caller)
        assert eventually(lambda: client.get(f"/api/images/{bobs_image}").json().get("likes") == 1, timeout=30)
    blobs_before = blob_files(system)

    with system.client(dave.token) as client:
        assert client.delete(f"/api/users/{dave.id}").status_code == 204

    with system.client(admin.token) as client:
        def gone() -> bool:
            return all(client.get(f"/api/{kind}/{number}").status_code == 404 for kind, number in made.items())

        assert eventually(gone, timeout=60), {k: client.get(f"/api/{k}/{n}").status_code for k, n in made.items()}
        for kind in made:
            assert client.get(f"/api/{kind}", params={"user": dave.id}).json()["total"] == 0, kind
        assert eventually(lambda: client.get(f"/api/images/{bobs_image}").json()["likes"] == 0, timeout=30)
        # bob's things are untouched; his collection lost dave's image only
        for kind, number in kept.items():
            assert client.get(f"/api/{kind}/{number}").status_code == 200, kind
        assert [i["image_id"] for i in client.get(f"/api/choices/{mixed}").json()["items"]] == [bobs_image]
        # each deletion is an ordinary one in the object's history, which an admin still reads from the log
        for kind, number in made.items():
            trail = client.get(f"/api/{kind}/{number}/events")
            assert trail.status_code == 200, (kind, trail.text)
            assert trail.json()[-1]["type"].endswith("Deleted"), (kind, trail.json()[-1])
    # dave's picture and its thumbnail go too (bob's is another picture: test uploads differ by their pixels)
    assert eventually(lambda: len(blobs_before - blob_files(system)) == 2, timeout=30)
    assert blob_files(system) <= blobs_before
