"""Value types of the queue port's inspection and admin operations: a job's record, a dead
letter, a queue's counts. Only code that inspects loads them (a worker never does)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from foundry.domain import ErrorInfo, Job, JobState, Progress


@attrs.frozen
class JobRecord:
    """Everything known about one job, for inspection."""

    job: Job
    state: JobState
    attempts: int
    enqueued_at: datetime
    # When a pending job becomes claimable (a due retry's may be unknown: None); for an
    # ended job (completed, dead, cancelled), the time its schedule gave at enqueue.
    run_at: datetime | None = None
    lease_deadline: datetime | None = None
    errors: tuple[ErrorInfo, ...] = ()
    result: Any = None
    reason: str | None = None
    finished_at: datetime | None = None
    worker: str | None = None  # the lease holder of an active job, as its claim named it
    progress: Progress | None = None  # the last progress its handler reported


@attrs.frozen
class DeadLetter:
    """A job that gave up, with why and every error it met."""

    job: Job
    reason: str
    attempts: int
    died_at: datetime
    errors: tuple[ErrorInfo, ...] = ()


@attrs.frozen
class QueueStats:
    """Counts for one queue. ``completed``, ``failed``, ``dead_trimmed`` and ``stale_rejected``
    are running totals; the others are current sizes (``waiting``: jobs waiting for the
    jobs their ``after`` names)."""

    queue: str
    ready: int = 0
    delayed: int = 0
    active: int = 0
    dead: int = 0
    paused: bool = False
    completed: int = 0
    failed: int = 0
    dead_trimmed: int = 0
    stale_rejected: int = 0
    waiting: int = 0

    @property
    def pending(self) -> int:
        """Jobs waiting to run: ready plus delayed."""
        return self.ready + self.delayed
