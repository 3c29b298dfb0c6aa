"""A middleware that logs each attempt's outcome and how long it ran in the child."""

from __future__ import annotations

import logging
from time import perf_counter

from foundry import JobContext, JobOutcome, Middleware

log = logging.getLogger(__name__)


class TimingMiddleware(Middleware):
    """Logs one record per attempt under ``foundry.contrib.timing``: INFO when it succeeded,
    WARNING when it failed, with the job's id, name, attempt and the milliseconds it took
    (the ``before_job`` hooks registered after this one and the handler).

    The record carries ``job_id``, ``attempt``, ``queue`` and ``duration_ms`` attributes for
    structured sinks.
    """

    def __init__(self) -> None:
        self._started: float | None = None  # a pool child runs one job at a time

    def before_job(self, job: JobContext) -> None:
        """Start the clock."""
        self._started = perf_counter()

    def after_job(self, job: JobContext, outcome: JobOutcome) -> None:
        """Log how the attempt ended and how long it took (0 ms, "failed before it started",
        when a ``before_job`` hook registered ahead of this one failed it)."""
        started, self._started = self._started, None
        duration_ms = 0.0 if started is None else (perf_counter() - started) * 1000
        extra = {
            "job_id": job.job_id,
            "attempt": job.attempt,
            "queue": job.queue,
            "duration_ms": duration_ms,
        }
        if outcome.ok:
            log.info(
                "%s (attempt %d) done in %.1f ms", job.name, job.attempt, duration_ms, extra=extra
            )
        elif started is None:
            log.warning(
                "%s (attempt %d) failed before it started: %s",
                job.name,
                job.attempt,
                type(outcome.error).__name__,
                extra=extra,
            )
        else:
            log.warning(
                "%s (attempt %d) failed after %.1f ms: %s",
                job.name,
                job.attempt,
                duration_ms,
                type(outcome.error).__name__,
                extra=extra,
            )
