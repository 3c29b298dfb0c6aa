"""What the supervisor knows about each child: its state, and the job it runs.

The supervisor owns the slots and alone changes them; its helpers only read them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

import attrs

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


@attrs.define
class Running:
    """A job a child is running, and the times that bound it (monotonic seconds)."""

    lease: Lease
    started_at: datetime
    started: float
    hard_at: float
    term_at: float | None = None
    killed: bool = False
    stop: str | None = None  # a cancel asked the job to stop: its reason


@attrs.define
class Slot:
    """One child process of the pool (replaced children reuse their slot)."""

    index: int
    pid: int = 0
    state: SlotState = SlotState.STARTING
    job: Running | None = None
    tasks: int = 0
    kill_at: float = float("inf")

    @property
    def busy(self) -> bool:
        """Whether the slot holds a job."""
        return self.job is not None


def all_idle(slots: Sequence[Slot]) -> bool:
    """No child runs or prepares a job: each is idle, or its slot waits for a new fork."""
    states = [slot.state for slot in slots]
    waiting = (SlotState.IDLE, SlotState.EMPTY)
    return SlotState.IDLE in states and all(state in waiting for state in states)
