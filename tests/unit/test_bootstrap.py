"""One bootstrap (aidraw/bootstrap.py): services reach routes through the typed container, and settings through
`Settings`; nothing outside the composition root reads `app.state` or the environment."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from aidraw.bootstrap import Services
from events.store.stream import stream_config

ROOT = Path(__file__).resolve().parents[2]
SIDES = ("command", "query", "infra", "events", "projectors", "gpu_runner")
# A read of the environment; `os.environ.setdefault(...)` only sets a library's own switch (HF_HUB_OFFLINE).
ENVIRONMENT = re.compile(r"\bos\.environ\b(?!\.setdefault\()|\bgetenv\(")
APP_STATE = re.compile(r"\bapp\.state\.|getattr\([\w.]*app\.state\b")


def _sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_no_module_reads_app_state() -> None:
    readers = [str(p.relative_to(ROOT)) for p in _sources(*SIDES, "aidraw") if APP_STATE.search(p.read_text())]
    assert readers == [], "take the service as a typed dependency (infra/services.py)"


def test_only_settings_reads_the_environment() -> None:
    readers = [str(p.relative_to(ROOT)) for p in _sources(*SIDES) if ENVIRONMENT.search(p.read_text())]
    assert readers == ["infra/settings.py"], "read it in infra/settings.py and pass the value on"


def test_the_container_holds_what_every_side_declares() -> None:
    # mypy checks the Protocols; this keeps the list honest for readers of the report and the docs.
    assert {f.name for f in dataclasses.fields(Services)} == {
        "settings", "commands", "event_log", "extend_session", "keys", "login_throttle", "blobs", "pool",
        "watcher", "caller_sequences", "nats", "views", "decoders", "live", "image_search", "presence"}


def test_the_stream_takes_its_replicas_from_settings() -> None:
    assert stream_config("S", "s").num_replicas == 1
    assert stream_config("S", "s", replicas=3).num_replicas == 3
