"""What the supervisor knows about each child: its state, and the job it runs.

The supervisor owns the slots and alone changes them; its helpers only read them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

from foundry.ports import Lease


class SlotState(enum.Enum):
    """Where a child is in its life."""

    EMPTY = "empty"  # its fork failed; another is tried after a backoff (no jobs meanwhile)
    STARTING = "starting"  # forked, running child_init; not yet ready for jobs
    IDLE = "idle"
    BUSY = "busy"
    RETIRING = "retiring"  # asked to exit (recycling or shutdown); no new jobs
    DYING = "dying"  # killed; waiting to see it gone
    GONE = "gone"  # exited and not replaced (shutdown)


class Running:
    """A job a child is running, and the times that bound it (monotonic seconds)."""

    __slots__ = ("hard_at", "killed", "lease", "started", "started_at", "stop", "term_at")

    def __init__(self, lease: Lease, started_at: datetime, started: float, hard_at: float) -> None:
        self.lease = lease
        self.started_at = started_at
        self.started = started
        self.hard_at = hard_at
        self.term_at: float | None = None
        self.killed = False
        self.stop: str | None = None  # a cancel asked the job to stop: its reason


class Slot:
    """One child process of the pool (replaced children reuse their slot)."""

    __slots__ = ("index", "job", "kill_at", "pid", "state", "tasks")

    def __init__(self, index: int, pid: int = 0, state: SlotState = SlotState.STARTING) -> None:
        self.index = index
        self.pid = pid
        self.state = state
        self.job: Running | None = None
        self.tasks = 0
        self.kill_at = float("inf")

    @property
    def busy(self) -> bool:
        """Whether the slot holds a job."""
        return self.job is not None


def all_idle(slots: Sequence[Slot]) -> bool:
    """No child runs or prepares a job: each is idle, or its slot waits for a new fork."""
    states = [slot.state for slot in slots]
    waiting = (SlotState.IDLE, SlotState.EMPTY)
    return SlotState.IDLE in states and all(state in waiting for state in states)
