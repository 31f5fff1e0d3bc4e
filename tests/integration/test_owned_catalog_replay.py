"""Random sequences of param, dataset, model and tag commands: what the commands answered is what the read
models show, and rebuilding each read model from the log gives exactly the live rows."""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

import pytest

from tests.catalog_accounts import Person, client_of, make_people
from tests.system import System

OSS = "https://cdn.example.com/x.png"
TAG_POOL = ["red", "Blue", "green", "sky", "sea", "dune"]


class Run:
    """Issues random commands and remembers the last answer for every live object (the oracle)."""

    def __init__(self, system: System, seed: int, people: list[Person]) -> None:
        self.system, self.rng, self.people = system, random.Random(seed), people
        self.live: dict[str, tuple[Person, dict[str, Any]]] = {}  # path -> (owner, last answer)
        self.gone: list[str] = []
        self.tags: dict[str, tuple[Person, int]] = {}  # tags this run created: name -> (creator, id)
        self.shared: set[str] = set()  # of those, the ones another person's model carried: admins only delete them

    def send(self, who: Person, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        with client_of(self.system, who) as client:
            answer = client.request(method, path, json=body)
        assert answer.status_code in (200, 201, 204), f"{method} {path} {body}: {answer.text}"
        return answer.json() if answer.status_code != 204 else None

    def tag_names(self) -> list[str]:
        return self.rng.sample(TAG_POOL + sorted(self.tags), self.rng.randint(0, 3))

    def create(self, who: Person) -> None:
        kind = self.rng.choice(["params", "datasets", "models"])
        body: dict[str, Any] = {"name": f"n{self.rng.randrange(1000)}", "public": self.rng.random() < 0.5}
        if kind == "params":
            body["data"] = {"steps": self.rng.randrange(100), "list": [self.rng.random()]}
        elif kind == "datasets":
            body["items"] = {"oss": [f"{OSS}?{self.rng.randrange(100)}"]}
        else:
            body |= {"type": self.rng.choice(["lora", "ckp", "hyper", "ti"]), "base_model": "SD2",
                     "tags": self.tag_names(), "data": {"oss": [OSS]}}
        self.note_users(who, body.get("tags", []))
        made = self.send(who, "POST", f"/api/{kind}", body)
        self.live[f"/api/{kind}/{made['id']}"] = (who, made)

    def change(self, who: Person, path: str) -> None:
        body: dict[str, Any] = self.rng.choice([{"name": f"r{self.rng.randrange(1000)}"},
                                                {"public": self.rng.random() < 0.5}])
        if "/models/" in path and self.rng.random() < 0.5:
            body = {"tags": self.tag_names(), "trigger_words": f"w{self.rng.randrange(9)}"}
        elif "/params/" in path and self.rng.random() < 0.5:
            body = {"data": {"v": self.rng.randrange(9)}}
        self.note_users(who, body.get("tags", []))
        self.live[path] = (who, self.send(who, "PATCH", path, body))

    def note_users(self, who: Person, names: list[str]) -> None:
        self.shared |= {name for name in names if name in self.tags and self.tags[name][0] is not who}

    def delete(self, who: Person, path: str) -> None:
        self.send(who, "DELETE", path)
        del self.live[path]
        self.gone.append(path)

    def make_tag(self, who: Person) -> None:
        name = f"t{self.rng.randrange(10**6)}"
        self.tags[name] = (who, self.send(who, "POST", "/api/tags", {"name": name})["id"])

    def delete_tag(self, who: Person, name: str) -> None:
        self.send(who, "DELETE", f"/api/tags/{self.tags.pop(name)[1]}")
        for path, (owner, body) in self.live.items():
            if "/models/" in path:  # a deleted tag leaves every model
                self.live[path] = (owner, {**body, "tags": [t for t in body["tags"] if t != name]})

    def step(self) -> None:
        who = self.rng.choice(self.people)
        mine = [path for path, (owner, _) in self.live.items() if owner is who]
        my_tags = sorted(name for name, (creator, _) in self.tags.items() if creator is who and name not in self.shared)
        roll = self.rng.random()
        if roll < 0.35 or not mine:
            self.create(who)
        elif roll < 0.7:
            self.change(who, self.rng.choice(mine))
        elif roll < 0.8:
            self.delete(who, self.rng.choice(mine))
        elif roll < 0.9 or not my_tags:
            self.make_tag(who)
        else:
            self.delete_tag(who, self.rng.choice(my_tags))


def last_sequence(system: System, who: Person) -> str:
    """The log's end: one more write tells it (its answer carries the sequence)."""
    with client_of(system, who) as client:
        return client.post("/api/params", json={"name": "marker"}).headers["X-Event-Sequence"]


@pytest.mark.parametrize("seed", [11, 12])
def test_read_models_show_what_commands_answered_and_rebuild_identically(system: System, seed: int) -> None:
    people = make_people(system)
    run = Run(system, seed, [people.alice, people.bob])
    for _ in range(60):
        run.step()
    end = last_sequence(system, people.admin)
    with client_of(system, people.admin) as admin:
        for path, (_, expected) in run.live.items():
            shown = admin.get(path, headers={"X-Event-Sequence": end})
            assert shown.status_code == 200 and shown.json() == expected, path
        for path in run.gone:
            assert admin.get(path, headers={"X-Event-Sequence": end}).status_code == 404
    for projection in ("params", "datasets", "models"):
        rebuilt = subprocess.run([sys.executable, "-m", "aidraw.cli", "rebuild", projection], env=system.env,
                                 capture_output=True, text=True, timeout=120, check=False)
        assert rebuilt.returncode == 0 and "identical" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
