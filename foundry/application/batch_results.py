"""Waiting for a whole batch (Celery's ``group(...).get()``): the members' records read
together, then a wait with the queue's own ``wait`` (woken by that member's end, no polling)
for the last member still pending, and the pending members read together again, until every
member ended or the one deadline passed; then the members' results in the batch's order."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from foundry.application.results import (
    _FOREVER_STEP,
    _OUTAGE_PAUSE_S,
    _left_after_outage,
    _limit,
    _wait,
    _wait_async,
    outcome,
)
from foundry.domain import (
    BatchNotFound,
    BatchTimeout,
    JobCancelled,
    JobFailed,
    JobNotFound,
    QueueUnavailable,
)

if TYPE_CHECKING:
    from foundry.ports import (
        AsyncBatchPort,
        AsyncQueuePort,
        BatchPort,
        BatchRecord,
        JobRecord,
        QueuePort,
    )

#: How many pending members a ``BatchTimeout`` names, and how many members it reads (in one
#: read) to find them (the batch's record counts them all).
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


class _Members:
    """What is known of the batch's members: each one's last record read, and which of them
    may still be pending (not known to have ended: read again at the next wake)."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.records: list[JobRecord | None] = [None] * len(ids)
        self._pending = list(range(len(ids)))

    @property
    def unread(self) -> list[str]:
        """The ids of the members that may still be pending, in the batch's order."""
        return [self.ids[index] for index in self._pending]

    @property
    def last_pending(self) -> str | None:
        """The member to wait for (its end is likely the last: members run in order), or
        ``None`` when every member ended."""
        return self.ids[self._pending[-1]] if self._pending else None

    def read(self, records: list[JobRecord | None]) -> None:
        """Take the records of the ``unread`` members, in their order."""
        still = []
        for index, record in zip(self._pending, records, strict=True):
            self.records[index] = record
            if record is not None and not record.state.is_final:
                still.append(index)
        self._pending = still

    def ended(self, record: JobRecord | None) -> None:
        """Take the record the wait for ``last_pending`` answered, final (or ``None``)."""
        self.records[self._pending.pop()] = record


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
    members = _Members(ids)
    while True:
        members.read(_read(batches, members.unread, home, deadline))
        job_id = members.last_pending
        if job_id is None:
            return _results(ids, members.records, propagate)
        member = _wait(queue, job_id, deadline.left(), home)
        while member is not None and not member.state.is_final and deadline.endless:
            member = _wait(queue, job_id, deadline.left(), home)
        if member is not None and not member.state.is_final:
            looked = members.unread[:_LOOKED]
            seen = list(zip(looked, _read(batches, looked, home, deadline), strict=True))
            raise _timed_out(batch_id, member, seen, batches.batch(batch_id, home), deadline.limit)
        members.ended(member)


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
    members = _Members(ids)
    while True:
        members.read(await _read_async(batches, members.unread, home, deadline))
        job_id = members.last_pending
        if job_id is None:
            return _results(ids, members.records, propagate)
        member = await _wait_async(queue, job_id, deadline.left(), home)
        while member is not None and not member.state.is_final and deadline.endless:
            member = await _wait_async(queue, job_id, deadline.left(), home)
        if member is not None and not member.state.is_final:
            looked = members.unread[:_LOOKED]
            seen = list(
                zip(looked, await _read_async(batches, looked, home, deadline), strict=True)
            )
            again = await batches.batch(batch_id, home)
            raise _timed_out(batch_id, member, seen, again, deadline.limit)
        members.ended(member)


def _read(
    batches: BatchPort, ids: list[str], home: str, deadline: _Deadline
) -> list[JobRecord | None]:
    """``batches.job_records``, asked again while the queue is unavailable until the
    deadline (then the outage is raised), as a wait would."""
    give_up = time.monotonic() + deadline.left().total_seconds()
    while True:
        try:
            return batches.job_records(ids, home)
        except QueueUnavailable as error:
            left = _left_after_outage(error, give_up)
        time.sleep(min(_OUTAGE_PAUSE_S, left))


async def _read_async(
    batches: AsyncBatchPort, ids: list[str], home: str, deadline: _Deadline
) -> list[JobRecord | None]:
    """``_read`` for an event loop."""
    give_up = time.monotonic() + deadline.left().total_seconds()
    while True:
        try:
            return await batches.job_records(ids, home)
        except QueueUnavailable as error:
            left = _left_after_outage(error, give_up)
        await asyncio.sleep(min(_OUTAGE_PAUSE_S, left))


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
