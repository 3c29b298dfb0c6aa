"""A child's self-fencing: if its job outlives the lease the parent last secured, it dies.

The parent can fence a child only while the parent runs. If the parent is stalled (stopped,
swapping, blocked) past a lease, the queue may give the job to another worker; the child's
watchdog thread then kills the child's process group, so two executions never overlap. The
deadline lives in a shared anonymous mapping written by the parent (monotonic seconds: one
clock for every process on the machine).

The same mapping holds each task's *start-by* time: a task the parent sent while the child
still ran the one before it waits in the pipe, and the child starts it only before that time
(the parent moves it as it renews the task's lease, or withdraws the task by setting it in
the past). Tasks are numbered in the order the child receives them; the two kept are those
of an even and an odd number, so the parent writes the next task's while the child may still
read the current one's. Then one past the number of the last task the child started (written
before it runs it): the parent reports a queued job's start once it reads it there. Last, a
byte the parent sets before it sends the child SIGTERM (a hard time limit): a SIGTERM without
it came from elsewhere (a service manager stopping every process of the worker), and the
child lets its job finish; the parent, told too, stops warm.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import struct
import threading
import time
from collections.abc import Callable

_DEADLINE = struct.Struct("d")
_START_BY = struct.Struct("d")  # at offset _DEADLINE.size + (task % 2) * _START_BY.size
_STARTED = struct.Struct("Q")  # at offset _STARTED_AT
_STARTED_AT = _DEADLINE.size + 2 * _START_BY.size
_TERMINATE_AT = _STARTED_AT + _STARTED.size  # one byte: 1 once the parent ends the child
#: How often a child's watchdog looks at its deadline (seconds).
WATCH_EVERY_S = 0.1


def new_fence() -> mmap.mmap:
    """A deadline shared with a child forked after this call; starts at never."""
    fence = mmap.mmap(-1, _TERMINATE_AT + 1)  # zeroed: no task started, not terminating
    set_fence(fence, float("inf"))
    for task in (0, 1):
        set_start_by(fence, task, float("inf"))
    return fence


def set_fence(fence: mmap.mmap, at: float) -> None:
    """Move the deadline (parent side)."""
    _DEADLINE.pack_into(fence, 0, at)


def fence_at(fence: mmap.mmap) -> float:
    """The current deadline (child side)."""
    deadline: float = _DEADLINE.unpack_from(fence, 0)[0]
    return deadline


def set_start_by(fence: mmap.mmap, task: int, at: float) -> None:
    """Let the child start its task number ``task`` only before ``at`` (parent side)."""
    _START_BY.pack_into(fence, _DEADLINE.size + (task % 2) * _START_BY.size, at)


def start_by(fence: mmap.mmap, task: int) -> float:
    """The time before which the child may start its task number ``task`` (child side)."""
    at: float = _START_BY.unpack_from(fence, _DEADLINE.size + (task % 2) * _START_BY.size)[0]
    return at


def set_started(fence: mmap.mmap, count: int) -> None:
    """Record that the child starts its task number ``count - 1`` (child side, before it
    runs it)."""
    _STARTED.pack_into(fence, _STARTED_AT, count)


def started(fence: mmap.mmap) -> int:
    """One past the number of the last task the child started; 0 before any (parent side)."""
    count: int = _STARTED.unpack_from(fence, _STARTED_AT)[0]
    return count


def set_terminating(fence: mmap.mmap) -> None:
    """Tell the child that the SIGTERM that follows is the parent's (parent side)."""
    fence[_TERMINATE_AT] = 1


def terminating(fence: mmap.mmap) -> bool:
    """Whether the parent has asked this child to end (child side)."""
    return fence[_TERMINATE_AT] == 1


def start_watchdog(
    fence: mmap.mmap, busy: Callable[[], bool], tell: Callable[[], None] = lambda: None
) -> threading.Thread:
    """Watch ``fence`` in a daemon thread; kill this process group when a job overruns it.
    Each look first calls ``tell`` (the child tells its parent what it has not yet)."""
    args = (fence, busy, tell)
    thread = threading.Thread(target=_watch, args=args, name="foundry-fence", daemon=True)
    thread.start()
    return thread


def _watch(fence: mmap.mmap, busy: Callable[[], bool], tell: Callable[[], None]) -> None:
    while True:
        time.sleep(WATCH_EVERY_S)
        with contextlib.suppress(OSError):  # the parent is gone: its death signal comes
            tell()
        if busy() and time.monotonic() >= fence_at(fence):
            _die()


def _die() -> None:
    me = os.getpid()
    # Only a group leader may kill its group: otherwise the group is the parent's.
    if os.getpgid(0) == me:
        os.killpg(me, signal.SIGKILL)
    os.kill(me, signal.SIGKILL)
