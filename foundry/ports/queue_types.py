"""Value types that cross the queue port."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs

from foundry.domain import ErrorInfo, Job, JobState


@attrs.frozen
class Lease:
    """A claimed job, held by one worker until ``deadline`` unless renewed.

    ``attempt`` is 1-based and counts starts: the first claim is attempt 1.
    ``token`` identifies this lease; only it may complete, fail, release or renew the job.
    """

    job: Job
    token: str
    attempt: int
    deadline: datetime

    @property
    def job_id(self) -> str:
        """The leased job's id."""
        return self.job.id

    @property
    def queue(self) -> str:
        """The queue the job was claimed from."""
        return self.job.queue


@attrs.frozen
class Enqueued:
    """The job is stored (or already was: a re-sent enqueue of the same id)."""

    job_id: str


@attrs.frozen
class Duplicate:
    """Refused: a job holding the same unique key, ``existing_id``, is still pending/running."""

    job_id: str
    existing_id: str


EnqueueOutcome = Enqueued | Duplicate


@attrs.frozen
class JobRecord:
    """Everything known about one job, for inspection."""

    job: Job
    state: JobState
    attempts: int
    enqueued_at: datetime
    run_at: datetime | None = None
    lease_deadline: datetime | None = None
    errors: tuple[ErrorInfo, ...] = ()
    result: Any = None
    reason: str | None = None
    finished_at: datetime | None = None


@attrs.frozen
class DeadLetter:
    """A job that gave up, with why and every error it met."""

    job: Job
    reason: str
    attempts: int
    died_at: datetime
    errors: tuple[ErrorInfo, ...] = ()


@attrs.frozen
class DeadLetterRetention:
    """How long dead letters are kept: at most ``max_count`` per queue, at most ``max_age`` old.

    ``None`` means no limit. Trimmed letters are counted in ``QueueStats.dead_trimmed``.
    """

    max_count: int | None = attrs.field(default=10_000)
    max_age: timedelta | None = timedelta(days=7)

    @max_count.validator
    def _max_count(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError(f"max_count must be at least 1 or None, got {value}")


@attrs.frozen
class QueueStats:
    """Counts for one queue. ``completed``, ``failed``, ``dead_trimmed`` and ``stale_rejected``
    are running totals; the others are current sizes."""

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

    @property
    def pending(self) -> int:
        """Jobs waiting to run: ready plus delayed."""
        return self.ready + self.delayed


@attrs.frozen
class WorkerInfo:
    """A live worker pool, as published by its heartbeat."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: datetime
    seen_at: datetime
    processed: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    mean_runtime_ms: float = 0.0
