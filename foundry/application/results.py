"""Waiting for a job's result: the record the queue's ``wait`` returns, turned into the value or
the error that says why there is none."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from foundry.domain import JobCancelled, JobFailed, JobNotFound, JobState, ResultTimeout
from foundry.domain.durations import duration
from foundry.ports import AsyncQueuePort, QueuePort

if TYPE_CHECKING:
    from foundry.ports import JobRecord

#: How long one ``wait`` of an unbounded ``result()`` lasts before it waits again.
_FOREVER_STEP = timedelta(minutes=1)
#: The longest bounded wait: a longer one is cut to it.
_LONGEST = timedelta(days=10 * 365)


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
    if isinstance(timeout, int | float) and timeout > _LONGEST.total_seconds():
        return _LONGEST  # an infinite or very long wait is a wait until it ends, in effect
    limit = duration(timeout)
    if limit is None or limit < timedelta(0):
        raise ValueError(
            f"timeout must be a number of seconds >= 0, a timedelta or None, got {timeout!r}"
        )
    return min(limit, _LONGEST)
