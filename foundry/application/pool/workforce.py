"""The port through which the supervisor commands its children.

``processes.ProcessWorkforce`` is the real one (forked processes); the supervisor's unit tests
use a recording fake. Children are named by slot index, never by pid.
"""

from __future__ import annotations

from typing import Protocol


class Workforce(Protocol):
    """The child processes, as the supervisor commands them (slot indexes, not pids)."""

    def spawn(self, slot: int) -> int:
        """Start a child for ``slot``; returns its pid. It reports ready, then takes tasks.

        Raises ``OSError`` if the fork fails (EAGAIN, ENOMEM, EMFILE).
        """
        ...

    def send(self, slot: int, frame: bytes) -> bool:
        """Send a task; ``False`` if the child's pipe is gone (it died)."""
        ...

    def stop(self, slot: int) -> None:
        """Ask the child to exit after its current task."""
        ...

    def interrupt(self, slot: int) -> None:
        """Ask the child to stop its job: SIGUSR2 to the child alone, which raises
        ``JobCancelled`` inside the running handler."""
        ...

    def terminate(self, slot: int) -> None:
        """SIGTERM the child's process group (and SIGCONT it, in case it is stopped)."""
        ...

    def kill(self, slot: int) -> None:
        """SIGKILL the child's process group."""
        ...

    def fence(self, slot: int, at: float) -> None:
        """Tell the child to kill itself if its job still runs at monotonic time ``at`` (the
        parent may be stalled then, unable to fence it)."""
        ...

    def start_by(self, slot: int, task: int, at: float) -> None:
        """Tell the child to start its task number ``task`` (counted from 0, in the order
        sent) only before monotonic time ``at``, else to answer it ``SKIPPED``. Set before
        the task is sent, and moved while it waits in the child."""
        ...

    def started(self, slot: int) -> int:
        """One past the number of the last task the child started (0 before any): it writes
        it (shared memory) before it runs the task, so a queued task it started is known
        before its answer about it."""
        ...

    def answered(self, slot: int) -> bool:
        """Whether the child has written a frame the parent has not read yet: after a
        ``start_by`` in the past, ``False`` means the task it names will not start."""
        ...

    def wait_gone(self, slot: int, timeout: float) -> bool:
        """Block until the child has exited (up to ``timeout`` s); whether it has."""
        ...
