"""The real workforce: forked child processes, each in its own process group, on a socket
pair.

A child is forked with ``os.fork`` and lives as a ``multiprocessing`` fork-context process
would: standard streams flushed before the fork, its stdin then ``/dev/null``, its exit status
0, the ``sys.exit`` code, or 1 after an uncaught exception (printed), its non-daemon threads
joined and its streams flushed before ``os._exit``; the parent watches an exit sentinel: a
pidfd (Linux 5.3 and later), readable once the child has exited whatever its own children
hold, else a pipe whose write end only the child (and what it forks) holds: a process the
child forked keeps that pipe open, so without pidfds the parent also asks the kernel whether
each child has exited (``Process.exited``, on SIGCHLD and on the loop's timed turns). Importing
``multiprocessing`` (with ``tempfile``, ``shutil``, ``bz2``, ``lzma``) would cost the worker's
start millions of instructions.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import select
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable

from foundry.application.pool.child import child_main, libc_prctl
from foundry.application.pool.watchdog import (
    new_fence,
    set_fence,
    set_start_by,
    set_terminating,
    started,
)
from foundry.application.pool.wire import STOP, Channel
from foundry.application.registry import JobRegistry
from foundry.ports import QueuePort

log = logging.getLogger(__name__)


class Process:
    """A forked child as the parent sees it: its pid, its exit sentinel, its exit code."""

    __slots__ = ("exitcode", "pid", "sentinel")

    def __init__(self, pid: int, sentinel: int) -> None:
        self.pid = pid
        self.sentinel = sentinel  # readable once the child has exited
        self.exitcode: int | None = None  # negative: the signal that killed it

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the child to exit and reap it if it did."""
        if self.exitcode is None and self.wait(timeout):
            # A pipe sentinel closes as the child exits, a moment before it can be reaped.
            self._reap(0)

    def exited(self) -> bool:
        """Whether the child has exited, without reaping it (until then its pid, and so its
        group id, names no other process); where ``waitid`` is missing it is reaped."""
        if self.exitcode is not None:
            return True
        if not _WAITID:
            return self.poll() is not None
        try:
            return os.waitid(os.P_PID, self.pid, _EXITED_NOWAIT) is not None
        except ChildProcessError:  # reaped already
            return True

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the child to exit (without reaping it); whether it did.
        A pipe sentinel a process the child forked still holds never reports it: the kernel
        is asked too, every ``_EXIT_POLL_S``."""
        deadline = time.monotonic() + timeout
        while not self.exited():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if _readable(self.sentinel, min(left, _EXIT_POLL_S)):
                return True
        return True

    def poll(self) -> int | None:
        """Reap the child if it has exited; its exit code, or ``None``."""
        if self.exitcode is None:
            self._reap(os.WNOHANG)
        return self.exitcode

    def _reap(self, flags: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, flags)
        except OSError:  # reaped already
            return
        if pid == self.pid:
            self.exitcode = os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        """Close the sentinel (again: nothing)."""
        fd, self.sentinel = self.sentinel, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        if self.sentinel >= 0:  # as an unclosed file says so: a leak shows in the tests
            warnings.warn(f"unclosed exit sentinel of child {self.pid}", ResourceWarning, 2)
            self.close()


class Child:
    """A forked child and the parent's end of its pipe."""

    __slots__ = ("conn", "fence", "process")

    def __init__(self, process: Process, conn: Channel, fence: mmap.mmap) -> None:
        self.process = process
        self.conn = conn
        self.fence = fence

    @property
    def pid(self) -> int:
        """The child's pid (also its process group id)."""
        return self.process.pid

    def close(self) -> None:
        """Close the parent's end of the pipe, the exit sentinel and the shared memory."""
        self.conn.close()
        self.process.close()
        self.fence.close()


class ProcessWorkforce:
    """Forks children with an explicit ``fork`` context, after the handlers are imported.

    ``on_spawn``/``on_gone`` let the event loop (un)register the pipes and exit sentinels.
    """

    def __init__(
        self,
        registry: JobRegistry,
        *,
        child_init: Callable[[], None] | None,
        max_rss: int | None,
        inherited: Callable[[], list[int]],
        on_spawn: Callable[[int, Child], None],
        nice: int = 0,
        queue: QueuePort | None = None,
    ) -> None:
        self._registry = registry
        self._queue = queue  # the queue a child claims from when asked (claims_from_forks)
        self._child_init = child_init
        self._max_rss = max_rss
        self._inherited = inherited
        self._on_spawn = on_spawn
        self._nice = nice
        self.children: dict[int, Child] = {}
        #: Whether the children's exits are watched by pidfds; if not, a pipe sentinel a
        #: grandchild holds never reports one, and the loop asks ``exited`` too.
        self.pidfds = _pidfd_works()

    def spawn(self, slot: int) -> int:
        """Fork a child for ``slot``; returns its pid. A failed fork raises ``OSError``
        (EAGAIN, ENOMEM, EMFILE) having closed what it opened."""
        with contextlib.ExitStack() as undo:
            parent_end, child_end = Channel.pair()
            undo.callback(parent_end.close)
            undo.callback(child_end.close)
            fence = new_fence()
            undo.callback(fence.close)
            process = self._start(slot, child_end, parent_end, fence)
            undo.pop_all()
        child_end.close()
        parent_end.bound_reads()
        child = Child(process, parent_end, fence)
        with contextlib.suppress(OSError):  # the child does it too; whoever is first wins
            os.setpgid(child.pid, child.pid)
        replaced = self.children.get(slot)
        self.children[slot] = child
        if replaced is not None:  # gone (its exit was read), or the pool would not replace it
            replaced.close()
        self._on_spawn(slot, child)
        return child.pid

    def exited(self) -> list[tuple[int, Child]]:
        """The children that have exited, not reaped yet (their exits are still to be read)."""
        return [
            (slot, c)
            for slot, c in self.children.items()
            if c.process.exitcode is None and c.process.exited()
        ]

    def _start(
        self, slot: int, child_end: Channel, parent_end: Channel, fence: mmap.mmap
    ) -> Process:
        inherited = [*self._inherited(), parent_end.fileno()]
        parent_pid = os.getpid()
        libc_prctl()  # loaded once, here: no child imports ctypes

        def life() -> None:
            child_main(
                child_end,
                registry=self._registry,
                parent_pid=parent_pid,
                inherited=inherited,
                child_init=self._child_init,
                max_rss=self._max_rss,
                fence=fence,
                nice=self._nice,
                queue=self._queue,
            )

        return fork(life, f"foundry-child-{slot}", pidfd=self.pidfds)

    def send(self, slot: int, frame: bytes) -> bool:
        """Send a frame; ``False`` if the child's pipe is broken."""
        try:
            # One write of header and frame, as the child reads them (one ``read``).
            self.children[slot].conn.send_bytes(frame)
        except (OSError, EOFError):
            return False
        return True

    def stop(self, slot: int) -> None:
        """Ask the child to exit after its current task."""
        self.send(slot, STOP)

    def interrupt(self, slot: int) -> None:
        """SIGUSR2 to the child alone (its handler raises ``JobCancelled``; grandchildren are
        not asked)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.children[slot].pid, signal.SIGUSR2)

    def terminate(self, slot: int) -> None:
        """SIGTERM the child's group, and SIGCONT it so a stopped child receives it (the child
        is told first that this SIGTERM is the parent's, see ``watchdog``)."""
        set_terminating(self.children[slot].fence)
        self._signal(slot, signal.SIGTERM)
        self._signal(slot, signal.SIGCONT)

    def kill(self, slot: int) -> None:
        """SIGKILL the child's process group."""
        self._signal(slot, signal.SIGKILL)

    def fence(self, slot: int, at: float) -> None:
        """Set the child's self-fencing deadline (monotonic seconds, shared memory)."""
        set_fence(self.children[slot].fence, at)

    def start_by(self, slot: int, task: int, at: float) -> None:
        """Set the start-by time of the child's task number ``task`` (shared memory)."""
        set_start_by(self.children[slot].fence, task, at)

    def started(self, slot: int) -> int:
        """One past the number of the last task the child started (shared memory)."""
        return started(self.children[slot].fence)

    def answered(self, slot: int) -> bool:
        """Whether the child has written a frame the parent has not read yet (or its pipe
        is broken)."""
        try:
            return self.children[slot].conn.poll()
        except (EOFError, OSError):
            return True

    def wait_gone(self, slot: int, timeout: float) -> bool:
        """Wait for the child to exit (it is reaped later, by ``exitcode``); whether it did."""
        return _exited(self.children[slot], timeout)

    def exitcode(self, slot: int) -> int | None:
        """Reap the child and return its exit code (negative: the signal that killed it)."""
        # Until it is reaped its pid cannot be reused, so its group id still names only its
        # own group: grandchildren left in it go too.
        self._signal(slot, signal.SIGKILL)
        process = self.children[slot].process
        process.join(1.0)
        return process.exitcode

    def close(self, timeout: float) -> None:
        """Stop every child: ask, wait up to ``timeout``, then kill what is left."""
        for slot in list(self.children):
            self.stop(slot)
        deadline = time.monotonic() + timeout
        for slot, child in self.children.items():
            if child.process.poll() is None:
                if not _exited(child, max(0.0, deadline - time.monotonic())):
                    log.warning("child %s did not stop; killing it", child.pid)
                self.exitcode(slot)
            child.close()
        self.children.clear()

    def _signal(self, slot: int, signum: int) -> None:
        """``signum`` to the child's process group, and to the child itself: a handler may
        have moved it to another group (or the group id is not set yet, just forked). Until
        it is reaped its pid names no other process."""
        process = self.children[slot].process
        if process.exitcode is not None:  # reaped: its pid may be another process's now
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _exited(child: Child, timeout: float) -> bool:
    """Whether the child has exited within ``timeout`` (without reaping it)."""
    return child.process.wait(timeout)


def _readable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(timeout, 0.0) * 1000.0))


def fork(target: Callable[[], None], name: str, *, pidfd: bool | None = None) -> Process:
    """Fork a child that runs ``target`` then exits (``name`` heads the report of an
    exception it raises), watched by a pidfd if ``pidfd`` (by default: if this system has
    them), else by a pipe; ``OSError`` if the fork fails."""
    if _PIDFD if pidfd is None else pidfd:
        return _fork_watched_by_pidfd(target, name)
    sentinel, held = os.pipe()
    try:
        pid = _fork(target, name, close=sentinel)
    except OSError:
        os.close(sentinel)
        raise
    finally:
        os.close(held)
    return Process(pid, sentinel)


def _fork_watched_by_pidfd(target: Callable[[], None], name: str) -> Process:
    """Fork, then watch the child through a pidfd: a grandchild a handler forked (and maybe
    moved to a session of its own) holds every descriptor the child had, a pipe sentinel too,
    which then never reported the child's exit; its job and slot hung until the grandchild
    ended."""
    pid = _fork(target, name, close=-1)
    try:
        sentinel = os.pidfd_open(pid)
    except OSError:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise
    return Process(pid, sentinel)


def _fork(target: Callable[[], None], name: str, *, close: int) -> int:
    """Fork a child that closes ``close`` (if not -1), runs ``target`` and exits; its pid."""
    _flush_std_streams()  # else what they buffer would be written again by the child
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            if close >= 0:
                os.close(close)
            status = _live(target, name)
        finally:
            os._exit(status)
    return pid


def _pidfd_works() -> bool:
    """Whether this system has pidfds (Linux 5.3 and later, Python 3.9 and later)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


_PIDFD = _pidfd_works()
_WAITID = hasattr(os, "waitid")  # (macOS has it from Python 3.13)
_EXITED_NOWAIT = (os.WEXITED | os.WNOHANG | os.WNOWAIT) if _WAITID else 0
#: Without a pidfd, how often a wait for a child's exit asks the kernel (seconds).
_EXIT_POLL_S = 0.05


def _live(target: Callable[[], None], name: str) -> int:
    """Run ``target`` in this child; its exit status."""
    _stdin_from_devnull()
    try:
        target()
        status = 0
    except SystemExit as stop:
        status = _exit_status(stop)
    except BaseException:
        status = 1
        sys.stderr.write(f"Process {name}:\n")
        traceback.print_exc()
    finally:
        threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads
        _flush_std_streams()
    return status


def _exit_status(stop: SystemExit) -> int:
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    sys.stderr.write(f"{stop.code}\n")
    return 1


def _stdin_from_devnull() -> None:
    if sys.stdin is None:
        return
    with contextlib.suppress(OSError, ValueError):
        sys.stdin.close()
    with contextlib.suppress(OSError, ValueError):
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - the process's stdin


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.flush()
