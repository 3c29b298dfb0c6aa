"""What the supervisor knows about each child: its state, and the job it runs.

The supervisor owns the slots. Of its helpers, ``HandOut`` (the jobs it sends and withdraws),
``LeaseDuties`` (the children it kills or stops for their leases) and ``Delegation`` (the
child making the pool's claim) change their own part of them; the others only read them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, datetime

from foundry.ports import Lease


class SlotState(enum.Enum):
    """Where a child is in its life."""

    EMPTY = "empty"  # its fork failed; another is tried after a backoff (no jobs meanwhile)
    STARTING = "starting"  # forked, running child_init; not yet ready for jobs
    IDLE = "idle"
    CLAIMING = "claiming"  # idle, making the pool's claim; it runs the first job it gets
    BUSY = "busy"
    RETIRING = "retiring"  # asked to exit (recycling or shutdown); no new jobs
    DYING = "dying"  # killed; waiting to see it gone
    GONE = "gone"  # exited and not replaced (shutdown)


#: ``Running.started_at`` of a job queued behind another: set when it starts (``HandOut.promote``).
NOT_STARTED = datetime.min.replace(tzinfo=UTC)


class Running:
    """A job a child is running (or holds queued behind its running one, ``Slot.queued``),
    its number among the child's tasks, and the times that bound it (monotonic seconds)."""

    __slots__ = ("hard_at", "killed", "lease", "started", "started_at", "stop", "task", "term_at")

    def __init__(
        self, lease: Lease, started_at: datetime, started: float, hard_at: float, task: int = 0
    ) -> None:
        self.lease = lease
        self.task = task
        self.started_at = started_at
        self.started = started
        self.hard_at = hard_at
        self.term_at: float | None = None
        self.killed = False
        self.stop: str | None = None  # a cancel asked the job to stop: its reason


class Slot:
    """One child process of the pool (replaced children reuse their slot).

    ``job`` is the job the child runs; ``queued`` one sent to it while it runs ``job``, not
    started yet as far as the parent knows (it starts once ``job`` ends: the child's answer
    about ``job`` tells the parent). ``sent`` counts the tasks sent to this child, which
    numbers them as the child does, and ``answered`` those it has answered (in order: a
    reply, or ``SKIPPED`` for one it did not start); ``rss`` is its memory after its last job.
    """

    __slots__ = (
        "answered",
        "index",
        "job",
        "kill_at",
        "pid",
        "queued",
        "rss",
        "sent",
        "state",
        "tasks",
    )

    def __init__(self, index: int, pid: int = 0, state: SlotState = SlotState.STARTING) -> None:
        self.index = index
        self.pid = pid
        self.state = state
        self.job: Running | None = None
        self.queued: Running | None = None
        self.tasks = 0
        self.sent = 0
        self.answered = 0
        self.rss = 0
        self.kill_at = float("inf")

    @property
    def open_tasks(self) -> int:
        """Tasks sent and not answered yet: at most two, each with its own start-by time
        (``watchdog``); a job withdrawn while queued stays one until the child skips it."""
        return self.sent - self.answered

    @property
    def busy(self) -> bool:
        """Whether the slot holds a job (running, or queued in a child about to be gone)."""
        return self.job is not None or self.queued is not None


def all_idle(slots: Sequence[Slot]) -> bool:
    """No child runs or prepares a job: each is idle, or its slot waits for a new fork."""
    states = [slot.state for slot in slots]
    waiting = (SlotState.IDLE, SlotState.EMPTY)
    return SlotState.IDLE in states and all(state in waiting for state in states)
