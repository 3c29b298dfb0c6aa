"""Waiting for a job's result: the record the queue's ``wait`` returns, turned into the value or
the error that says why there is none."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from foundry.domain import JobCancelled, JobFailed, JobNotFound, JobState, ResultTimeout
from foundry.ports import AsyncQueuePort, QueuePort

if TYPE_CHECKING:
    from foundry.ports import JobRecord

#: How long one ``wait`` of an unbounded ``result()`` lasts before it waits again.
_FOREVER_STEP = timedelta(minutes=1)


def wait_for_result(
    queue: QueuePort, job_id: str, timeout: float | timedelta | None, where: str | None
) -> Any:
    """The result of ``job_id`` (see ``Dispatcher.result``)."""
    limit = _limit(timeout)
    if limit is None:
        record = queue.wait(job_id, _FOREVER_STEP, where)
        while record is not None and not record.state.is_final:
            record = queue.wait(job_id, _FOREVER_STEP, record.job.queue)
    else:
        record = queue.wait(job_id, limit, where)
    return outcome(job_id, record, limit)


async def wait_for_result_async(
    queue: AsyncQueuePort, job_id: str, timeout: float | timedelta | None, where: str | None
) -> Any:
    """``wait_for_result`` for an event loop (see ``AsyncDispatcher.result``)."""
    limit = _limit(timeout)
    if limit is None:
        record = await queue.wait(job_id, _FOREVER_STEP, where)
        while record is not None and not record.state.is_final:
            record = await queue.wait(job_id, _FOREVER_STEP, record.job.queue)
    else:
        record = await queue.wait(job_id, limit, where)
    return outcome(job_id, record, limit)


def outcome(job_id: str, record: JobRecord | None, waited: timedelta | None) -> Any:
    """The completed job's result, or the error its record calls for."""
    if record is None:
        raise JobNotFound(job_id)
    if record.state is JobState.COMPLETED:
        return record.result
    if record.state is JobState.DEAD:
        raise JobFailed(job_id, record.reason or "dead", record.errors)
    if record.state is JobState.CANCELLED:
        raise JobCancelled(job_id, record.reason or "cancelled")
    seconds = 0.0 if waited is None else waited.total_seconds()
    raise ResultTimeout(job_id, record.state.value, seconds)


def _limit(timeout: float | timedelta | None) -> timedelta | None:
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(
            f"timeout must be a number of seconds >= 0, a timedelta or None, got {timeout!r}"
        )
    return timedelta(seconds=min(seconds, 10 * 365 * 86400))
