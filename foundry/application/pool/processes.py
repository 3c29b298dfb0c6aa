"""The real workforce: forked child processes, each in its own process group, on a pipe."""

from __future__ import annotations

import contextlib
import logging
import mmap
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkProcess

from foundry.application.pool.child import child_main
from foundry.application.pool.watchdog import new_fence, set_fence, set_start_by, started
from foundry.application.pool.wire import STOP, framed, write_all
from foundry.application.registry import JobRegistry

log = logging.getLogger(__name__)


class Child:
    """A forked child and the parent's end of its pipe."""

    __slots__ = ("conn", "fence", "process")

    def __init__(self, process: ForkProcess, conn: Connection, fence: mmap.mmap) -> None:
        self.process = process
        self.conn = conn
        self.fence = fence

    @property
    def pid(self) -> int:
        """The child's pid (also its process group id)."""
        pid = self.process.pid
        assert pid is not None
        return pid


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
    ) -> None:
        self._registry = registry
        self._child_init = child_init
        self._max_rss = max_rss
        self._inherited = inherited
        self._on_spawn = on_spawn
        self._nice = nice
        self._context = multiprocessing.get_context("fork")
        self.children: dict[int, Child] = {}

    def spawn(self, slot: int) -> int:
        """Fork a child for ``slot``; returns its pid. A failed fork raises ``OSError``
        (EAGAIN, ENOMEM, EMFILE) having closed what it opened."""
        with contextlib.ExitStack() as undo:
            parent_end, child_end = self._context.Pipe(duplex=True)
            undo.callback(parent_end.close)
            undo.callback(child_end.close)
            fence = new_fence()
            undo.callback(fence.close)
            process = self._start(slot, child_end, parent_end, fence)
            undo.pop_all()
        child_end.close()
        child = Child(process, parent_end, fence)
        with contextlib.suppress(OSError):  # the child does it too; whoever is first wins
            os.setpgid(child.pid, child.pid)
        self.children[slot] = child
        self._on_spawn(slot, child)
        return child.pid

    def _start(
        self, slot: int, child_end: Connection, parent_end: Connection, fence: mmap.mmap
    ) -> ForkProcess:
        process = self._context.Process(
            target=child_main,
            args=(child_end,),
            kwargs={
                "registry": self._registry,
                "parent_pid": os.getpid(),
                "inherited": [*self._inherited(), parent_end.fileno()],
                "child_init": self._child_init,
                "max_rss": self._max_rss,
                "fence": fence,
                "nice": self._nice,
            },
            name=f"foundry-child-{slot}",
            daemon=False,
        )
        process.start()
        return process

    def send(self, slot: int, frame: bytes) -> bool:
        """Send a frame; ``False`` if the child's pipe is broken."""
        try:
            # One write of header and frame, as the child reads them (one ``read``).
            write_all(self.children[slot].conn.fileno(), framed(frame))
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
        """SIGTERM the child's group, and SIGCONT it so a stopped child receives it."""
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
            if child.process.exitcode is None:
                if not _exited(child, max(0.0, deadline - time.monotonic())):
                    log.warning("child %s did not stop; killing it", child.pid)
                self.exitcode(slot)
            child.conn.close()
            child.fence.close()
        self.children.clear()

    def _signal(self, slot: int, signum: int) -> None:
        pid = self.children[slot].pid
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            # The group id may not be set yet (the child is just forked): signal it alone.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def _exited(child: Child, timeout: float) -> bool:
    """Whether the child has exited within ``timeout`` (without reaping it)."""
    return bool(wait([child.process.sentinel], timeout))
