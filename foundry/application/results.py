"""Waiting for a job's result: the record the queue's ``wait`` returns, turned into the value or
the error that says why there is none. An outage (a failover, a restart) met while waiting is
waited out, within the wait's time: the job may well end meanwhile."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from foundry.domain import (
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobState,
    QueueBroken,
    QueueUnavailable,
    ResultTimeout,
)
from foundry.domain.durations import duration
from foundry.ports import AsyncQueuePort, QueuePort

if TYPE_CHECKING:
    from foundry.ports import JobRecord

#: How long one ``wait`` of an unbounded ``result()`` lasts before it waits again.
_FOREVER_STEP = timedelta(minutes=1)
#: The longest bounded wait: a longer one is cut to it.
_LONGEST = timedelta(days=10 * 365)
#: The pause (seconds) before a wait that met an outage asks again (besides the client's own
#: retries, which a backend may not have).
_OUTAGE_PAUSE_S = 0.2


def wait_for_result(
    queue: QueuePort, job_id: str, timeout: float | timedelta | None, where: str | None
) -> Any:
    """The result of ``job_id`` (see ``Dispatcher.result``)."""
    limit = _limit(timeout)
    if limit is None:
        record = _wait(queue, job_id, _FOREVER_STEP, where)
        while record is not None and not record.state.is_final:
            record = _wait(queue, job_id, _FOREVER_STEP, record.job.queue)
    else:
        record = _wait(queue, job_id, limit, where)
    return outcome(job_id, record, limit)


def _wait(queue: QueuePort, job_id: str, limit: timedelta, where: str | None) -> JobRecord | None:
    """``queue.wait``, asked again while the queue is unavailable until ``limit`` runs out
    (then the outage is raised)."""
    give_up = time.monotonic() + limit.total_seconds()
    while True:
        try:
            return queue.wait(job_id, limit, where)
        except QueueUnavailable as error:
            left = _left_after_outage(error, give_up)
        time.sleep(min(_OUTAGE_PAUSE_S, left))
        limit = timedelta(seconds=max(give_up - time.monotonic(), 0.0))


async def wait_for_result_async(
    queue: AsyncQueuePort, job_id: str, timeout: float | timedelta | None, where: str | None
) -> Any:
    """``wait_for_result`` for an event loop (see ``AsyncDispatcher.result``)."""
    limit = _limit(timeout)
    if limit is None:
        record = await _wait_async(queue, job_id, _FOREVER_STEP, where)
        while record is not None and not record.state.is_final:
            record = await _wait_async(queue, job_id, _FOREVER_STEP, record.job.queue)
    else:
        record = await _wait_async(queue, job_id, limit, where)
    return outcome(job_id, record, limit)


async def _wait_async(
    queue: AsyncQueuePort, job_id: str, limit: timedelta, where: str | None
) -> JobRecord | None:
    """``_wait`` for an event loop."""
    give_up = time.monotonic() + limit.total_seconds()
    while True:
        try:
            return await queue.wait(job_id, limit, where)
        except QueueUnavailable as error:
            left = _left_after_outage(error, give_up)
        await asyncio.sleep(min(_OUTAGE_PAUSE_S, left))
        limit = timedelta(seconds=max(give_up - time.monotonic(), 0.0))


def _left_after_outage(error: QueueUnavailable, give_up: float) -> float:
    """The seconds a wait that met ``error`` has left to ask again; ``error`` is raised if none
    are left, or if it is no outage that passes (a broken queue)."""
    left = give_up - time.monotonic()
    if left <= 0 or isinstance(error, QueueBroken):
        raise error
    return left


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
