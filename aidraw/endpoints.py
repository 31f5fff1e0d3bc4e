"""Where the servers are: external ones from settings, or the embedded ones recorded by `aidraw run`."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from infra.settings import Settings

# How long a recorded server may take to accept a connection before the record is taken for stale.
PROBE_TIMEOUT_S = 2.0


class EndpointsError(RuntimeError):
    """No servers to talk to, or the recorded ones are gone; the message says what to do."""


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


def _address(url: str) -> tuple[str, int] | None:
    """Host and port of a single-server URL (nats://h:p, postgresql://u@h:p/db); None when there is no one."""
    try:
        split = urlsplit(url.split(",")[0].strip())
        host, port = split.hostname, split.port
    except ValueError:
        return None
    return (host, port) if host and port else None


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _read_record(path: Path) -> dict[str, str]:
    try:
        recorded = json.loads(path.read_text())
        if not isinstance(recorded, dict):
            raise ValueError("not a JSON object")
        return {key: str(recorded[key]) for key in ("nats_url", "database_url")}
    except (OSError, ValueError, KeyError) as exc:
        raise EndpointsError(
            f"{path} cannot be read ({exc}): it is written by `aidraw run` while it runs. Start the system with "
            "`make run`, or set AIDRAW_NATS_URL and AIDRAW_DATABASE_URL for external servers."
        ) from None


def resolve(settings: Settings) -> Endpoints:
    """The servers' URLs: the settings', else those `aidraw run` recorded, once they are seen to answer."""
    nats_url, database_url = settings.nats_url, settings.database_url
    if not (nats_url and database_url):
        path = record_file(settings)
        if not path.exists():
            raise EndpointsError(
                f"No servers to talk to: no running system records its servers in {path}. Start the system with "
                "`make run` (embedded servers, data in that folder); if it runs with another AIDRAW_DATA_DIR, set "
                "the same AIDRAW_DATA_DIR here; or set AIDRAW_NATS_URL and AIDRAW_DATABASE_URL."
            )
        recorded = _read_record(path)
        from_record = [(what, url) for what, url, own in (("NATS", recorded["nats_url"], nats_url),
                                                          ("PostgreSQL", recorded["database_url"], database_url))
                       if not own]
        for what, url in from_record:
            address = _address(url)
            if address is not None and not _answers(*address):
                raise EndpointsError(
                    f"The embedded system recorded in {path} is not running (its {what} at {address[0]}:"
                    f"{address[1]} does not answer: the record is left from an `aidraw run` that was killed). "
                    "Start it with `make run`, or set AIDRAW_NATS_URL and AIDRAW_DATABASE_URL for external servers."
                )
        nats_url = nats_url or recorded["nats_url"]
        database_url = database_url or recorded["database_url"]
    return Endpoints(nats_url=nats_url, database_url=database_url)
