"""`command/`, `query/`, `infra/` and `gpu_runner/` depend on the event store's Protocol
(events/store/protocol.py), never on an adapter: the JetStream modules, the bridge, the in-memory store. Read
from the source (every import statement, also inside functions), so nothing needs to be imported to check it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CALLERS = ("command", "query", "infra", "gpu_runner")  # aidraw/ is the composition root: it picks the adapter
ALLOWED = {"events.store.protocol"}
# The modules that lived at the top of events/ before events/store/ (an old spelling is an adapter import too).
MOVED = {"jetstream", "writeplan", "bridge", "batch", "directget", "subscription", "stream", "snapshots",
         "claims", "errors"}


def _is_adapter(module: str) -> bool:
    if module in ALLOWED:
        return False
    parts = module.split(".")
    return (parts[:2] == ["events", "store"]) or (len(parts) == 2 and parts[0] == "events" and parts[1] in MOVED)


def adapter_imports(source: str) -> list[str]:
    """The event-store modules other than the Protocol that `source` imports."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names if _is_adapter(alias.name))
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            if node.module in ("events", "events.store"):  # `from events.store import jetstream`
                found.extend(name for name in names if _is_adapter(name))
            elif _is_adapter(node.module):
                found.append(node.module)
    return found


def test_the_scan_finds_every_spelling_of_an_adapter_import() -> None:
    source = """
import events.store.jetstream
from events.store.bridge import NatsBridge
from events.store import memory, protocol
from events import jetstream
def later() -> None:
    from events.store.aio import AsyncJetStreamStore
from events.store.protocol import EventStore
from events.tags import TagCreated
"""
    assert adapter_imports(source) == [
        "events.store.jetstream", "events.store.bridge", "events.store.memory", "events.jetstream",
        "events.store.aio"]


@pytest.mark.parametrize("package", CALLERS)
def test_callers_import_only_the_event_store_protocol(package: str) -> None:
    offenders = {str(path.relative_to(ROOT)): found
                 for path in sorted((ROOT / package).rglob("*.py"))
                 if (found := adapter_imports(path.read_text()))}
    assert offenders == {}
