"""`kill -USR1` on an aidraw process writes its threads' stacks and its asyncio tasks' await chains to stderr,
and the process carries on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import asyncio, os, signal
    from aidraw.stackdump import install_stack_dump

    async def waits_for_the_broker():
        await asyncio.sleep(30)

    async def main():
        install_stack_dump()
        task = asyncio.create_task(waits_for_the_broker(), name="stuck-loop")
        await asyncio.sleep(0.1)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.sleep(0.1)
        task.cancel()
        print("carried on")

    asyncio.run(main())
""")


def test_sigusr1_dumps_threads_and_await_chains_and_the_process_carries_on() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])))
    assert done.returncode == 0 and done.stdout.strip() == "carried on", done.stderr
    assert "Current thread" in done.stderr and "in main" in done.stderr  # faulthandler's thread stacks
    chain = done.stderr.split("task stuck-loop:", 1)[1]
    assert "in waits_for_the_broker" in chain and "in sleep" in chain, done.stderr
