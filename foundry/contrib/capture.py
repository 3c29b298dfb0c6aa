"""A Sentry-style middleware: every failed attempt goes to an error sink, tagged with its job."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping

from foundry import JobCancelled, JobContext, Middleware

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
    cancel is not captured. A sink that raises is logged and never changes the attempt's
    outcome. Register it first so that it sees the error other middlewares' ``on_error``
    hooks may replace.
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
        tags = {
            "job_id": job.job_id,
            "job_name": job.name,
            "queue": job.queue,
            "attempt": str(job.attempt),
        }
        try:
            self._sink(error, tags)
        except Exception:
            log.exception("the error sink failed for job %s; its error is not captured", job.job_id)
