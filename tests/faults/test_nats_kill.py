"""The NATS server SIGKILLed under a write load, then restarted on its port and store: writes meanwhile are
refused at once (503, Retry-After), every acknowledged write is in the log once, and the read model that the
restarted projector builds equals a rebuild from the log."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from aidraw.services import NatsServer, PostgresServer
from tests.accounts import new_account
from tests.system import System
from tests.write_load import (
    TagWriter,
    assert_each_acknowledged_write_once,
    assert_read_model_equals_rebuild,
    close_bridge,
    wait_projected,
)


def test_a_sigkilled_nats_loses_no_acknowledged_write_and_the_read_model_converges(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    nats = NatsServer(tmp_path / "nats").start()
    stream = f"NK{uuid.uuid4().hex[:8]}"
    database = postgres_server.create_database(f"nk_{uuid.uuid4().hex[:8]}")
    # A long event-log timeout: the quick refusals below can only come from noticing that NATS is gone.
    sut = System(nats.url, database, stream, tmp_path / "system",
                 extra_env={"AIDRAW_EVENT_LOG_TIMEOUT": "30"}).start()
    writer = TagWriter(sut.url, new_account(sut).token)
    try:
        writer.start().wait_for(30)
        nats.kill()
        time.sleep(1.5)
        refused_while_down = list(writer.refused)
        nats.start()  # the same port and store: the API and the projector reconnect
        writer.wait_for(30)
        writer.stop()
        assert refused_while_down, "no write was refused while NATS was down"
        assert all(retry_after == "2" for _, retry_after, _ in writer.refused)
        assert writer.slowest_refusal_s < 5, writer.slowest_refusal_s  # not the 30 s timeout
        assert sut.procs["api"].poll() is None and sut.procs["projector"].poll() is None

        assert_each_acknowledged_write_once(writer, nats.url, stream)
        last = wait_projected(database, nats.url, stream)
        clean = postgres_server.create_database(f"clean_{uuid.uuid4().hex[:8]}")
        assert_read_model_equals_rebuild(database, clean, nats.url, stream, last)
    finally:
        writer.stop()
        sut.stop()
        close_bridge(nats.url)
        nats.stop()
