"""Batches: jobs dispatched together whose end (every member completed, dead or cancelled)
enqueues callback jobs, exactly once; the batch's progress and the rules of its end.

``BatchProgress.ended`` is the one rule both queues follow (the Redis functions keep the same
in ``lua/_queue.lua``): ``catch`` fires at the first member that goes dead; when no member is
left pending, ``then`` fires if every member completed (or, with ``allow_failures``, unless the
batch was cancelled) and ``finally`` fires always.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from foundry.domain.errors import InvalidJob, JobNotFound
from foundry.domain.job import Job, _check_id, new_job_id

#: The most members one batch may hold (one script stores them all).
MAX_BATCH_JOBS = 100_000
#: The metadata key naming a member's or callback's batch.
BATCH_KEY = "foundry.batch"


class Callback(enum.StrEnum):
    """A batch's callbacks, in the order they fire when one event fires several."""

    CATCH = "catch"
    THEN = "then"
    FINALLY = "finally"


class MemberEnd(enum.StrEnum):
    """How a member ended, as the batch counts it."""

    COMPLETED = "completed"
    FAILED = "failed"  # dead
    CANCELLED = "cancelled"  # cancelled or deleted


def _count(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an int >= 0, got {value!r}")


@attrs.frozen
class BatchProgress:
    """How far a batch is: its members' ends so far, and what was asked of it."""

    total: int = attrs.field(validator=_count)
    completed: int = attrs.field(default=0, validator=_count)
    failed: int = attrs.field(default=0, validator=_count)
    cancelled: int = attrs.field(default=0, validator=_count)
    allow_failures: bool = False
    #: A cancel of the batch was asked: its pending members were cancelled; ``then`` never fires.
    cancel_requested: bool = False
    #: ``catch`` fired (at the first failure).
    caught: bool = False

    def __attrs_post_init__(self) -> None:
        if self.total < 1 or self.completed + self.failed + self.cancelled > self.total:
            raise ValueError(f"counts beyond the batch's {self.total} members: {self!r}")

    @property
    def pending(self) -> int:
        """Members that have not ended (waiting, ready, delayed or running)."""
        return self.total - self.completed - self.failed - self.cancelled

    @property
    def finished(self) -> bool:
        """Every member ended: the batch's end callbacks fired."""
        return self.pending == 0

    @property
    def succeeded(self) -> bool | None:
        """Whether the end counts as a success (``then`` fired; a job waiting for the batch
        runs), ``None`` while members are pending."""
        if not self.finished:
            return None
        return not self.cancel_requested and (self.allow_failures or self.completed == self.total)

    def ended(self, end: MemberEnd, count: int = 1) -> tuple[BatchProgress, tuple[Callback, ...]]:
        """The progress once ``count`` more members ended as ``end``, and the callbacks that
        fire now (never one that fired before). Raises ``ValueError`` past the total."""
        if count < 1 or count > self.pending:
            raise ValueError(f"{count} member(s) cannot end; {self.pending} pending")
        field = {
            MemberEnd.COMPLETED: "completed",
            MemberEnd.FAILED: "failed",
            MemberEnd.CANCELLED: "cancelled",
        }[end]
        changes: dict[str, Any] = {field: getattr(self, field) + count}
        fired: list[Callback] = []
        if end is MemberEnd.FAILED and not self.caught:
            changes["caught"] = True
            fired.append(Callback.CATCH)
        after = attrs.evolve(self, **changes)
        if after.finished:
            if after.succeeded:
                fired.append(Callback.THEN)
            fired.append(Callback.FINALLY)
        return after, tuple(fired)

    def cancel(self) -> BatchProgress:
        """The progress once a cancel was asked (its members' ends are counted as they come)."""
        return attrs.evolve(self, cancel_requested=True)


def _ordered(jobs: Sequence[Job]) -> tuple[Job, ...]:
    """The members ordered so that each comes after the members it waits for (a stable
    topological order); raises ``InvalidJob`` naming a cycle."""
    by_id = {job.id: job for job in jobs}
    placed: dict[str, None] = {}
    visiting: list[str] = []

    def place(job: Job) -> None:
        if job.id in placed:
            return
        if job.id in visiting:
            cycle = [*visiting[visiting.index(job.id) :], job.id]
            raise InvalidJob(
                "after",
                f"the batch's jobs wait for each other in a cycle ({' -> '.join(cycle)}); "
                "no job of it could ever run: remove one of these dependencies",
            )
        visiting.append(job.id)
        for dep in job.after:
            if dep in by_id:
                place(by_id[dep])
        visiting.pop()
        placed[job.id] = None

    for job in jobs:
        place(job)
    return tuple(by_id[job_id] for job_id in placed)


def _members(value: Iterable[Job]) -> tuple[Job, ...]:
    jobs = tuple(value)
    if not jobs:
        raise InvalidJob("jobs", "a batch needs at least one job")
    if len(jobs) > MAX_BATCH_JOBS:
        raise InvalidJob("jobs", f"at most {MAX_BATCH_JOBS} jobs per batch, got {len(jobs)}")
    if len({job.id for job in jobs}) != len(jobs):
        raise InvalidJob("jobs", "a batch names each job once")
    return _ordered(jobs)


def _callbacks(
    value: Mapping[Callback, Job | None] | Mapping[str, Job | None],
) -> dict[Callback, Job]:
    out: dict[Callback, Job] = {}
    for name, job in value.items():
        try:
            which = Callback(name)
        except ValueError:
            raise InvalidJob("callbacks", f"{name!r} is not then, catch or finally") from None
        if job is not None:
            out[which] = job
    return out


def _flag(_: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidJob(attribute.name, f"{value!r} must be True or False")


@attrs.frozen
class Batch:
    """Jobs dispatched together (``jobs``, all of one queue), and the jobs to enqueue when the
    batch ends (``callbacks``: then, catch, finally; see ``BatchProgress.ended``).

    Validated at construction (``InvalidJob`` naming the problem): at least one job, every job
    and callback in the batch's queue, ids used once, no member with a unique key (a duplicate
    would never end), no callback waiting for other jobs or holding a unique key, and no
    cycle among the members' ``after``: members are put after the members they wait for.
    """

    jobs: tuple[Job, ...] = attrs.field(converter=_members)
    callbacks: dict[Callback, Job] = attrs.field(factory=dict, converter=_callbacks)
    allow_failures: bool = attrs.field(default=False, validator=_flag)
    id: str = attrs.field(factory=new_job_id)

    def __attrs_post_init__(self) -> None:
        if _check_id(self.id) is not None:
            raise InvalidJob("batch_id", f"{self.id!r} is not a valid id")
        queue = self.jobs[0].queue
        seen = {self.id}
        for job in (*self.jobs, *self.callbacks.values()):
            if job.queue != queue:
                raise InvalidJob(
                    "queue",
                    f"job {job.id} is in queue {job.queue!r}, the batch in {queue!r}: a batch's "
                    "jobs and callbacks share one queue",
                )
            if job.id in seen:
                raise InvalidJob("jobs", f"id {job.id!r} is used twice in the batch")
            seen.add(job.id)
        for job in self.jobs:
            if job.unique is not None:
                raise InvalidJob("unique", f"job {job.id} of a batch cannot hold a unique key")
        for which, job in self.callbacks.items():
            if job.after or job.unique is not None:
                raise InvalidJob(
                    "callbacks",
                    f"the {which.value} callback runs when the batch ends: it cannot wait for "
                    "other jobs (after) nor hold a unique key",
                )

    @property
    def queue(self) -> str:
        """The queue of every job of the batch."""
        return self.jobs[0].queue

    def progress(self) -> BatchProgress:
        """The progress of the batch as dispatched: nothing ended yet."""
        return BatchProgress(total=len(self.jobs), allow_failures=self.allow_failures)


def one_queue(items: Sequence[Job | Batch]) -> str:
    """The one queue of jobs and batches stored together; ``InvalidJob`` if they span several
    (a store keeps each queue's records together, so one write holds one queue) or use an id
    twice (a batch named twice, a job in two batches: neither could be counted once)."""
    queues = {item.queue for item in items}
    if len(queues) != 1:
        raise InvalidJob(
            "queue", f"jobs and batches stored together share one queue, got {sorted(queues)}"
        )
    _ids_once(items)
    return queues.pop()


def _ids_once(items: Sequence[Job | Batch]) -> None:
    seen: set[str] = set()
    for item in items:
        ids = (item.id,) if isinstance(item, Job) else _batch_ids(item)
        for used in ids:
            if used in seen:
                raise InvalidJob(
                    "jobs",
                    f"id {used!r} is used twice among the jobs and batches stored together: "
                    "name each once (a chain needs a new batch from build_batch for each step)",
                )
            seen.add(used)


def _batch_ids(batch: Batch) -> tuple[str, ...]:
    return (
        batch.id,
        *(job.id for job in batch.jobs),
        *(job.id for job in batch.callbacks.values()),
    )


class BatchNotFound(JobNotFound):
    """No batch with that id is kept (never dispatched, or ended longer ago than a completed
    job's record is kept)."""

    def __init__(self, batch_id: str, queue: str | None = None) -> None:
        super().__init__(batch_id, queue)
        where = f" in queue {queue!r}" if queue else ""
        self.args = (f"no batch {batch_id!r}{where}; list batches with `foundry batch list`",)
