"""When a job a child held queued started, as far as the parent can tell.

A child starts the job queued behind its running one right after it answered about that one,
unless the job's start-by time has passed then (it answers ``SKIPPED``). The parent reads the
answer first: the queued job becomes the slot's job, but its start is reported to the
observers only once the parent knows of it, from the count of started tasks the child keeps
in shared memory (``Workforce.started``), or from a frame about the job. A job the child
skipped is never reported: a start is reported once per real start.
"""

from __future__ import annotations

from collections.abc import Callable

from foundry.application.pool.slots import Running
from foundry.application.pool.workforce import Workforce

#: While a start is unconfirmed, the parent looks at the child's count at least this often
#: (seconds); it looks at every turn of its loop anyway. A shorter wait adds turns: under
#: load about half the starts are read unconfirmed (the child's reply wakes the parent,
#: which may preempt it before it starts the next job), and 1 ms added a quarter of a turn
#: per 10 ms job.
LOOK_EVERY_S = 0.05


class Starts:
    """The promoted jobs whose start is not reported yet, by slot index (with its pid)."""

    def __init__(self, workforce: Workforce, report: Callable[[Running, int], None]) -> None:
        self._workforce = workforce
        self._report = report  # (the job, its child's pid): tell the observers it started
        self._pending: dict[int, tuple[Running, int]] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def promoted(self, index: int, job: Running, pid: int) -> None:
        """``job``, queued in slot ``index``'s child, is its job now: reported if the child
        has started it already, else once it is known to have."""
        if self._workforce.started(index) > job.task:
            self._report(job, pid)
        else:
            self._pending[index] = (job, pid)

    def seen(self, index: int, job: Running) -> None:
        """A frame about ``job`` came from its child: it started."""
        pending = self._pending.get(index)
        if pending is not None and pending[0] is job:
            del self._pending[index]
            self._report(*pending)

    def look(self) -> None:
        """Report the pending starts the children have counted."""
        for index, (job, pid) in list(self._pending.items()):
            if self._workforce.started(index) > job.task:
                del self._pending[index]
                self._report(job, pid)

    def settle(self, index: int, job: Running) -> bool:
        """Stop watching ``job`` (its child is gone, or the pool gives it up): whether it
        started (reported now if not yet; a job the parent never promoted started)."""
        pending = self._pending.get(index)
        if pending is None or pending[0] is not job:
            return True
        del self._pending[index]
        if self._workforce.started(index) <= job.task:
            return False
        self._report(*pending)
        return True

    def skipped(self, index: int) -> None:
        """The child skipped the job it held: it never started."""
        self._pending.pop(index, None)

    def next_wake(self, now: float) -> float:
        """When to look again."""
        return now + LOOK_EVERY_S if self._pending else float("inf")
