"""A Sentry-style middleware: every failed attempt goes to an error sink, tagged with its job."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping

from foundry import (
    ErrorInfo,
    JobCancelled,
    JobContext,
    Lease,
    Middleware,
    Outcome,
    TimeLimitExceeded,
    WorkerLost,
)

log = logging.getLogger(__name__)

#: Receives a failed attempt's exception and its tags (job id, name, queue, attempt).
Sink = Callable[[BaseException, Mapping[str, str]], object]


class ErrorCapture(Middleware):
    """Hands every exception that fails an attempt (the handler's or a ``before_job``
    hook's) to ``sink`` with the job's tags, e.g. for Sentry::

        def to_sentry(error, tags):
            with sentry_sdk.new_scope() as scope:
                scope.set_tags(tags)
                scope.capture_exception(error)

        registry.use(ErrorCapture(to_sentry))

    ``sink`` runs in the child, once per failed attempt (a job retried three times is
    captured three times, its ``attempt`` tag telling them apart); a job stopped by its
    cancel is not captured. An attempt whose child was killed (at the job's hard time limit,
    by a signal such as the kernel's out-of-memory kill, or an exit) ran no hook in the child:
    it reaches the sink from the worker's parent, as ``TimeLimitExceeded`` or ``WorkerLost``.
    A sink that raises is logged and never changes the attempt's outcome. Register it first
    so that it sees the error other middlewares' ``on_error`` hooks may replace.
    """

    def __init__(self, sink: Sink) -> None:
        if inspect.iscoroutinefunction(sink):
            raise TypeError(
                f"the error sink {getattr(sink, '__qualname__', sink)} is async def: its "
                "coroutine would never run and no error would be sent; pass a plain function"
            )
        self._sink = sink

    def on_error(self, job: JobContext, error: BaseException) -> None:
        """Hand ``error`` to the sink, unless it is this job's cancel stopping it (asked
        for, not an error)."""
        if isinstance(error, JobCancelled) and error.job_id == job.job_id:
            return
        self._capture(error, job.job_id, job.name, job.queue, job.attempt)

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        """Parent: hand the sink the error of an attempt whose child was killed (no hook of
        the child saw it); other attempts' errors were captured in the child."""
        error = _child_killed(lease, outcome.error)
        if error is not None:
            job = lease.job
            self._capture(error, job.id, job.name, job.queue, lease.attempt)

    def _capture(
        self, error: BaseException, job_id: str, name: str, queue: str, attempt: int
    ) -> None:
        tags = {"job_id": job_id, "job_name": name, "queue": queue, "attempt": str(attempt)}
        try:
            self._sink(error, tags)
        except Exception:
            log.exception("the error sink failed for job %s; its error is not captured", job_id)


def _qualified(kind: type[BaseException]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


_TIME_LIMIT, _LOST = _qualified(TimeLimitExceeded), _qualified(WorkerLost)


def _child_killed(lease: Lease, info: ErrorInfo | None) -> BaseException | None:
    """The exception the parent recorded for a killed child (the hard time limit, or the
    child lost), rebuilt for the sink; ``None`` for any other end."""
    if info is None:
        return None
    if info.type == _TIME_LIMIT:
        return TimeLimitExceeded(lease.job.timeout.total_seconds())
    if info.type == _LOST:
        return WorkerLost(signal=info.signal, exit_code=info.exit_code)
    return None
