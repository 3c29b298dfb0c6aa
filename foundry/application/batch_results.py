"""Waiting for a whole batch (Celery's ``group(...).get()``): every member's end, waited for
one after another with the queue's own ``wait`` (woken by each end, no polling) within one
deadline, then the members' results in the batch's order."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from foundry.application.results import _FOREVER_STEP, _limit, _wait, _wait_async, outcome
from foundry.domain import BatchNotFound, BatchTimeout, JobCancelled, JobFailed, JobNotFound

if TYPE_CHECKING:
    from foundry.ports import (
        AsyncBatchPort,
        AsyncQueuePort,
        BatchPort,
        BatchRecord,
        JobRecord,
        QueuePort,
    )

#: How many pending members a ``BatchTimeout`` names, and how many members it reads to
#: find them (one read each; the batch's record counts them all).
_NAMED = 10
_LOOKED = 200


class _Deadline:
    """The time a wait has left: ``None`` (no timeout) waits a minute at a time."""

    def __init__(self, limit: timedelta | None) -> None:
        self.limit = limit
        self._end = None if limit is None else time.monotonic() + limit.total_seconds()

    def left(self) -> timedelta:
        if self._end is None:
            return _FOREVER_STEP
        return timedelta(seconds=max(self._end - time.monotonic(), 0.0))

    @property
    def endless(self) -> bool:
        return self._end is None


def wait_for_batch(
    queue: QueuePort,
    batches: BatchPort,
    batch_id: str,
    timeout: float | timedelta | None,
    where: str | None,
    *,
    propagate: bool,
) -> list[Any]:
    """The results of the batch's members (see ``Dispatcher.batch_results``)."""
    record = batches.batch(batch_id, where)
    found = None if record is None else batches.members(batch_id, record.queue)
    home, ids = _members(batch_id, where, record, found)
    deadline = _Deadline(_limit(timeout))
    records: list[JobRecord | None] = []
    for job_id in ids:
        member = _wait(queue, job_id, deadline.left(), home)
        while member is not None and not member.state.is_final and deadline.endless:
            member = _wait(queue, job_id, deadline.left(), home)
        if member is not None and not member.state.is_final:
            rest = ids[len(records) : len(records) + _LOOKED]
            seen = [(job_id, queue.get(job_id, home)) for job_id in rest]
            again = batches.batch(batch_id, home)
            raise _timed_out(batch_id, member, seen, again, deadline.limit)
        records.append(member)
    return _results(ids, records, propagate)


async def wait_for_batch_async(
    queue: AsyncQueuePort,
    batches: AsyncBatchPort,
    batch_id: str,
    timeout: float | timedelta | None,
    where: str | None,
    *,
    propagate: bool,
) -> list[Any]:
    """``wait_for_batch`` for an event loop (see ``AsyncDispatcher.batch_results``)."""
    record = await batches.batch(batch_id, where)
    found = None if record is None else await batches.members(batch_id, record.queue)
    home, ids = _members(batch_id, where, record, found)
    deadline = _Deadline(_limit(timeout))
    records: list[JobRecord | None] = []
    for job_id in ids:
        member = await _wait_async(queue, job_id, deadline.left(), home)
        while member is not None and not member.state.is_final and deadline.endless:
            member = await _wait_async(queue, job_id, deadline.left(), home)
        if member is not None and not member.state.is_final:
            rest = ids[len(records) : len(records) + _LOOKED]
            seen = [(job_id, await queue.get(job_id, home)) for job_id in rest]
            again = await batches.batch(batch_id, home)
            raise _timed_out(batch_id, member, seen, again, deadline.limit)
        records.append(member)
    return _results(ids, records, propagate)


def _members(
    batch_id: str, where: str | None, record: BatchRecord | None, ids: list[str] | None
) -> tuple[str, list[str]]:
    """The batch's queue and member ids; ``BatchNotFound`` if it is not kept, or its member
    list is not (a PostgreSQL batch stored before migration 0017)."""
    if record is None:
        raise BatchNotFound(batch_id, where)
    if ids is None:
        missing = BatchNotFound(batch_id, record.queue)
        missing.args = (
            f"batch {batch_id!r} keeps no list of its jobs (it was dispatched before this "
            "release); wait for each of its jobs with result(job_id)",
        )
        raise missing
    return record.queue, ids


def _results(ids: list[str], records: list[JobRecord | None], propagate: bool) -> list[Any]:
    """Each member's result, in order; a member that did not complete raises its error
    (``propagate``) or has the error in its place."""
    answers: list[Any] = []
    for job_id, record in zip(ids, records, strict=True):
        try:
            answers.append(outcome(job_id, record, None))
        except (JobFailed, JobCancelled, JobNotFound) as error:
            if propagate:
                raise
            answers.append(error)
    return answers


def _timed_out(
    batch_id: str,
    member: JobRecord,
    seen: list[tuple[str, JobRecord | None]],
    record: BatchRecord | None,
    limit: timedelta | None,
) -> BatchTimeout:
    """The timeout naming the first pending members ``seen`` (the one waited for if they
    all ended meanwhile) and how many the batch's ``record`` counts."""
    pending = tuple(
        (job_id, found.state.value)
        for job_id, found in seen
        if found is not None and not found.state.is_final
    )[:_NAMED] or ((member.job.id, member.state.value),)
    left = max(len(pending), 0 if record is None else record.progress.pending)
    seconds = 0.0 if limit is None else limit.total_seconds()
    return BatchTimeout(batch_id, pending, left, seconds)
