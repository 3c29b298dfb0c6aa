"""A child's self-fencing: if its job outlives the lease the parent last secured, it dies.

The parent can fence a child only while the parent runs. If the parent is stalled (stopped,
swapping, blocked) past a lease, the queue may give the job to another worker; the child's
watchdog thread then kills the child's process group, so two executions never overlap. The
deadline lives in a shared anonymous mapping written by the parent (monotonic seconds: one
clock for every process on the machine).
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import threading
import time
from collections.abc import Callable

_DEADLINE = struct.Struct("d")
#: How often a child's watchdog looks at its deadline (seconds).
WATCH_EVERY_S = 0.1


def new_fence() -> mmap.mmap:
    """A deadline shared with a child forked after this call; starts at never."""
    fence = mmap.mmap(-1, _DEADLINE.size)
    set_fence(fence, float("inf"))
    return fence


def set_fence(fence: mmap.mmap, at: float) -> None:
    """Move the deadline (parent side)."""
    _DEADLINE.pack_into(fence, 0, at)


def fence_at(fence: mmap.mmap) -> float:
    """The current deadline (child side)."""
    deadline: float = _DEADLINE.unpack_from(fence, 0)[0]
    return deadline


def start_watchdog(fence: mmap.mmap, busy: Callable[[], bool]) -> threading.Thread:
    """Watch ``fence`` in a daemon thread; kill this process group when a job overruns it."""
    thread = threading.Thread(target=_watch, args=(fence, busy), name="foundry-fence", daemon=True)
    thread.start()
    return thread


def _watch(fence: mmap.mmap, busy: Callable[[], bool]) -> None:
    while True:
        time.sleep(WATCH_EVERY_S)
        if busy() and time.monotonic() >= fence_at(fence):
            _die()


def _die() -> None:
    me = os.getpid()
    # Only a group leader may kill its group: otherwise the group is the parent's.
    if os.getpgid(0) == me:
        os.killpg(me, signal.SIGKILL)
    os.kill(me, signal.SIGKILL)
