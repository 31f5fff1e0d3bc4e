"""Where the servers are: external ones from settings, or the embedded ones recorded by `aidraw run`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from infra.settings import Settings


@dataclass(frozen=True)
class Endpoints:
    nats_url: str
    database_url: str


def record_file(settings: Settings) -> Path:
    return settings.data_dir / "run" / "endpoints.json"


def save_embedded(settings: Settings, endpoints: Endpoints) -> None:
    path = record_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"nats_url": endpoints.nats_url, "database_url": endpoints.database_url}))


def resolve(settings: Settings) -> Endpoints:
    nats_url, database_url = settings.nats_url, settings.database_url
    if not (nats_url and database_url):
        path = record_file(settings)
        if not path.exists():
            raise SystemExit(
                "No servers to talk to: start the system with `make run` (embedded servers, data in "
                f"{settings.data_dir}), or set AIDRAW_NATS_URL and AIDRAW_DATABASE_URL."
            )
        recorded = json.loads(path.read_text())
        nats_url = nats_url or recorded["nats_url"]
        database_url = database_url or recorded["database_url"]
    return Endpoints(nats_url=nats_url, database_url=database_url)
