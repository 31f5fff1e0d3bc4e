"""`GET /api/servers?status=online|busy|draining|offline` (docs/runners.md): the live status, the log's drain joined
with the heartbeats, selects the runners, alone or with the other filters, and pages and totals agree with it; an
unknown status is a 422 problem. Four registered runners, three of them with a heartbeat put straight into the
bucket (no runner process: what a runner puts, events/heartbeats.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats

from events.heartbeats import Heartbeat, open_heartbeats
from tests.catalog_accounts import People, assert_problem, client_of
from tests.image_support import eventually
from tests.servers_support import register_server
from tests.system import System

TTL_S = 15.0  # the system's AIDRAW_RUNNER_TTL (the default)


def put_heartbeats(system: System, beats: list[Heartbeat]) -> None:
    async def put() -> None:
        nc = await nats.connect(system.nats_url)
        try:
            kv = await open_heartbeats(nc.jetstream(), system.stream, TTL_S)
            for beat in beats:
                await kv.put(str(beat.server_id), beat.encode())
        finally:
            await nc.close()

    asyncio.run(put())


def test_status_selects_the_runners_by_their_live_status(system: System, people: People) -> None:
    ids = {name: register_server(system, f"status-{name}") for name in ("idle", "working", "drained", "gone")}
    with client_of(system, people.admin) as client:
        def listed(**params: Any) -> dict[str, Any]:
            answer = client.get("/api/servers", params=params)
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        def ids_of(status: str, **params: Any) -> set[int]:
            body = listed(status=status, **params)
            assert body["total"] == len(body["list"]) and body["total_exact"]
            assert {s["status"] for s in body["list"]} <= {v.lower() for v in status.split(",")}, body
            return {s["id"] for s in body["list"]}

        assert eventually(lambda: len(listed()["list"]) == 4, timeout=30), listed()
        drained = client.patch(f"/api/servers/{ids['drained']}", json={"status": "draining"})
        assert drained.status_code == 200, drained.text
        assert ids_of("offline") == set(ids.values())  # no heartbeat yet: every one is offline, drained too

        put_heartbeats(system, [Heartbeat(ids["idle"], "online", [], time.time(), ["default"]),
                                Heartbeat(ids["working"], "busy", [77], time.time(), ["default"]),
                                Heartbeat(ids["drained"], "draining", [], time.time(), ["default"])])
        assert eventually(lambda: ids_of("online") == {ids["idle"]}, timeout=10), listed()
        assert ids_of("busy") == {ids["working"]}
        assert ids_of("draining") == {ids["drained"]}
        assert ids_of("offline") == {ids["gone"]}
        assert ids_of("online,busy") == {ids["idle"], ids["working"]}  # a comma list is a union
        assert ids_of("Draining,OFFLINE") == {ids["drained"], ids["gone"]}  # any case
        assert ids_of("online", q="status-idle") == {ids["idle"]} and ids_of("online", q="gone") == set()
        paged = listed(status="online,busy,draining", page_size=2)
        assert paged["total"] == 3 and paged["next"] and len(paged["list"]) == 2
        assert listed(status="online,busy,draining", page_size=2, page=2)["list"][0]["id"] not in {
            s["id"] for s in paged["list"]}

        for bad in ("asleep", "online,asleep", "", "online,,busy", "online "):
            problem = assert_problem(client.get("/api/servers", params={"status": bad}), 422)
            assert "status" in problem["detail"], problem
        assert "online, busy, draining, offline" in assert_problem(
            client.get("/api/servers", params={"status": "asleep"}), 422)["detail"]
    with client_of(system, people.alice) as client:  # any logged-in user may filter
        body = client.get("/api/servers", params={"status": "busy"}).json()
        assert [s["id"] for s in body["list"]] == [ids["working"]] and body["list"][0]["task_ids"] == []
    with client_of(system, None) as anonymous:
        assert_problem(anonymous.get("/api/servers", params={"status": "busy"}), 401)
