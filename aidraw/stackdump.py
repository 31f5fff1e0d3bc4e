"""`kill -USR1 <pid>` on any aidraw process writes where it is to its stderr (the role's log): every thread's
Python stack and, when an asyncio loop runs in the main thread, every task's await chain. For a process that does
not finish (a role still alive after its SIGTERM, a loop that stopped moving) without py-spy.

The thread stacks come from faulthandler (async-signal-safe, written even while the main thread is stuck in C
code); the task chains from a Python handler, which runs once the main thread is back in the interpreter.
"""

from __future__ import annotations

import asyncio
import faulthandler
import signal
import sys
from types import FrameType
from typing import Any


def _await_chain(task: asyncio.Task[Any]) -> list[str]:
    lines, coro = [], task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is not None:
            lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        inner = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        if inner is None or not (hasattr(inner, "cr_frame") or hasattr(inner, "gi_frame")):
            if inner is not None:  # a future, a lock, ...: what the innermost coroutine waits on
                lines.append(f"    awaiting {inner!r}"[:300])
            break
        coro = inner
    return lines


def _dump_tasks(signum: int, frame: FrameType | None) -> None:
    loop = asyncio._get_running_loop()  # the main thread's, where Python runs signal handlers
    if loop is None:
        return
    out = sys.stderr
    out.write(f"--- asyncio tasks ({len(asyncio.all_tasks(loop))}) ---\n")
    for task in asyncio.all_tasks(loop):
        out.write(f"task {task.get_name()}:\n" + "\n".join(_await_chain(task)) + "\n")
    out.write("--- end of stack dump ---\n")
    out.flush()


def install_stack_dump(signum: int = signal.SIGUSR1) -> None:
    signal.signal(signum, _dump_tasks)  # first: faulthandler's handler then chains to this one
    faulthandler.register(signum, file=sys.stderr, all_threads=True, chain=True)
