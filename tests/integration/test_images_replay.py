"""Property: whatever sequence of catalog commands ran, the images read model projected live equals the same log
rebuilt from sequence 0 (rm.images, image_likes, choices, choice_items, row for row)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projectors.loop import Target
from projectors.postgres.images import ImagesProjector
from projectors.rebuild import rebuild
from tests.catalog_accounts import People, Person, client_of
from tests.image_files import picture, upload
from tests.image_support import log_end, wait_projected
from tests.system import System

TAGS = ["replay-sun", "replay-sky", "Replay-Sun", "replay-sea"]
OPS = ["upload", "upload", "change", "like", "unlike", "delete", "choice", "choice_change", "choice_delete"]
STEPS = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 7), st.integers(0, 7), st.booleans()),
                 min_size=1, max_size=14)


@dataclass
class Catalog:
    """Drives the API; remembers what it made so later steps can refer to it (refusals are fine)."""

    system: System
    users: list[Person]
    images: list[int] = field(default_factory=list)
    choices: list[tuple[int, Person]] = field(default_factory=list)
    shared: bytes = field(default_factory=picture)  # some uploads share bytes, as real users' do

    def as_user(self, n: int) -> httpx.Client:
        return client_of(self.system, self.users[n % len(self.users)])

    def pick(self, items: list[int], n: int) -> int:
        return items[n % len(items)] if items else 123456789

    def run(self, op: str, a: int, b: int, flag: bool) -> int:
        image, other = self.pick(self.images, a), self.pick(self.images, b)
        with self.as_user(a) as client:
            if op == "upload":
                answer = upload(client, self.shared if flag and b % 2 else None,
                                fields={"public": str(flag or b % 3 > 0).lower(), "tags": TAGS[b % 4]})
                if answer.status_code == 201:
                    self.images.append(answer.json()["id"])
            elif op == "change":
                answer = client.patch(f"/api/images/{image}", json={"public": flag, "tags": TAGS[: b % 4],
                                                                     "name": f"n{b}"})
            elif op in ("like", "unlike"):
                answer = client.request("PUT" if op == "like" else "DELETE", f"/api/images/{image}/like")
            elif op == "delete":
                answer = client.delete(f"/api/images/{image}")
            elif op == "choice":
                answer = client.post("/api/choices", json={"name": f"c{b}", "public": flag, "items": [
                    {"image_id": i, "weight": float(b)} for i in dict.fromkeys([image, other])]})
                if answer.status_code == 201:
                    self.choices.append((answer.json()["id"], self.users[a % len(self.users)]))
            else:
                choice, owner = self.choices[b % len(self.choices)] if self.choices else (123456789, self.users[0])
                with client_of(self.system, owner) as mine:
                    answer = (mine.delete(f"/api/choices/{choice}") if op == "choice_delete" else
                              mine.patch(f"/api/choices/{choice}", json={"items": [{"image_id": image}]}))
        return answer.status_code


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_live_projection_equals_a_rebuild_of_the_same_log(system: System, people: People,
                                                           steps: list[tuple[str, int, int, bool]]) -> None:
    catalog = Catalog(system, [people.alice, people.bob, people.admin])
    for op, a, b, flag in steps:
        status = catalog.run(op, a, b, flag)
        assert status < 500, (op, status)
    end = log_end(system)
    wait_projected(system, end)
    report = asyncio.run(rebuild(ImagesProjector(), Target(system.nats_url, system.stream, system.database_url),
                                 end))
    assert report.compared and report.identical, report.differences
