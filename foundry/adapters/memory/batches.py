"""Batches in the memory queue (``BatchPort``): each batch's progress and callbacks, which
batch each pending member belongs to, and what a member's end does to its batch.

Every operation runs under the store's lock; a member's end is told by the store (``ended``)
in the same hold of the lock as the transition itself, so the callbacks it fires are enqueued
atomically with it. The rules of the end are the domain's (``BatchProgress.ended``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

import attrs

from foundry.adapters.memory.dependencies import Dependencies, check_known
from foundry.adapters.memory.records import EntryCodec
from foundry.adapters.memory.store import Entry, MemoryStore, QueueState
from foundry.domain import InvalidJob, Job, JobState
from foundry.domain.batch import Batch, BatchProgress, Callback, MemberEnd, one_queue
from foundry.ports import EnqueueOutcome
from foundry.ports.batches import BatchRecord
from foundry.ports.inspection import JobRecord

#: Stores one encoded job: ``MemoryQueue._put``.
Put = Callable[[Job, bytes, datetime], EnqueueOutcome]

_ENDS = {JobState.COMPLETED: MemberEnd.COMPLETED, JobState.DEAD: MemberEnd.FAILED}


@attrs.define(slots=True, eq=False)
class _Stored:
    """One batch as the memory queue keeps it."""

    id: str
    queue: str
    progress: BatchProgress
    created_at: datetime
    members: list[str]
    callbacks: dict[Callback, tuple[Job, bytes]]
    fired: set[Callback] = attrs.Factory(set)
    finished_at: datetime | None = None
    reason: str | None = None

    def record(self) -> BatchRecord:
        return BatchRecord(
            id=self.id,
            queue=self.queue,
            progress=self.progress,
            created_at=self.created_at,
            finished_at=self.finished_at,
            callbacks={which: job.id for which, (job, _) in self.callbacks.items()},
            fired=frozenset(self.fired),
            reason=self.reason,
        )


class MemoryBatches:
    """Every queue's batches; ``ended`` is called by the store when any job ends."""

    def __init__(
        self,
        store: MemoryStore,
        records: EntryCodec,
        deps: Dependencies,
        completed_ttl: timedelta,
    ) -> None:
        self._store = store
        self._records = records
        self._deps = deps
        self._ttl = completed_ttl
        self._batches: dict[tuple[str, str], _Stored] = {}
        self._member_of: dict[tuple[str, str], str] = {}
        #: A callback not enqueued yet (its batch running) -> (its batch id, which it is).
        self._callback_of: dict[tuple[str, str], tuple[str, Callback]] = {}
        self.put: Put | None = None
        deps.batch_state = self._as_dependency

    # -- the port -------------------------------------------------------------------------------

    def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """Encode everything first (a bad job writes nothing), then store in order."""
        if not items:
            return
        queue = one_queue(items)
        jobs = [job for item in items for job in _jobs_of(item)]
        blobs = {job.id: self._records.encode_job(job) for job in jobs}
        callbacks = {
            item.id: {w: (job, self._records.encode_job(job)) for w, job in item.callbacks.items()}
            for item in items
            if isinstance(item, Batch)
        }
        put = self.put
        assert put is not None
        with self._store.cond:
            now = self._store.tick()
            state = self._store.queue(queue)
            if any(isinstance(item, Batch) and self._kept(queue, item.id) for item in items):
                return  # a re-send: the first one stored everything
            self._check_ids(state, items)
            self._check_known(state, items)
            for item in items:
                if isinstance(item, Batch):
                    self._open(item, callbacks[item.id], now)
                    for job in item.jobs:
                        put(job, blobs[job.id], now)
                else:
                    put(item, blobs[item.id], now)
            self._store.cond.notify_all()

    def known(self, queue: str) -> Callable[[str], bool]:
        """Whether an id names a batch ``queue`` keeps (a job may wait for it)."""
        return lambda batch_id: self._kept(queue, batch_id) is not None

    def refuse_batch_ids(self, jobs: Sequence[Job]) -> None:
        """``InvalidJob`` (before any write) for a job whose id is a kept batch's: batch and
        job ids share one space."""
        for job in jobs:
            if self._batches and self._kept(job.queue, job.id):
                raise InvalidJob(
                    "id",
                    f"{job.id!r} is a batch's id in queue {job.queue!r} (batch and job ids "
                    "share one space): pick another job id",
                )

    def refuse_taken_ids(self, jobs: Sequence[Job]) -> None:
        """``InvalidJob`` (before any write) for a job whose id is a kept batch's or a pending
        callback's (``refuse_batch_ids``, ``_refuse_callback_ids``): what a job enqueued
        outside a batch may not take. A dict probe a job for each, none while no batch is
        kept and no callback pending."""
        self.refuse_batch_ids(jobs)
        if self._callback_of:
            for job in jobs:
                self._refuse_callback_ids(job.queue, (job.id,))

    def _check_ids(self, state: QueueState, items: Sequence[Job | Batch]) -> None:
        """Refuse (before any write) a batch id that is a stored job's, a job or callback
        id that is a kept batch's, and a batch, job or callback id that is a pending
        callback's."""
        for item in items:
            if isinstance(item, Batch):
                if item.id in state.jobs:
                    raise InvalidJob("batch_id", f"{item.id!r} is a job's id; pick another")
                self.refuse_batch_ids([*item.jobs, *item.callbacks.values()])
            else:
                self.refuse_batch_ids([item])
            self._refuse_callback_ids(state.name, _ids_of(item))

    def _refuse_callback_ids(self, queue: str, ids: Iterable[str]) -> None:
        """``InvalidJob`` for an id that is a pending callback's: the batch's end enqueues
        that callback later, and would find its id taken."""
        for used in ids:
            pending = self._callback_of.get((queue, used))
            if pending is not None:
                batch_id, which = pending
                raise InvalidJob(
                    "id",
                    f"{used!r} is the {which.value} callback of batch {batch_id!r} in queue "
                    f"{queue!r}, not enqueued yet (batch, job and callback ids share one "
                    "space): pick another id",
                )

    def _check_known(self, state: QueueState, items: Sequence[Job | Batch]) -> None:
        """Refuse (before any write) a job waiting for what its queue does not hold nor comes
        earlier in ``items`` (a batch counts from its last member on)."""
        kept = self.known(state.name)
        earlier: set[str] = set()
        for item in items:
            check_known(state, _jobs_of(item), lambda dep: dep in earlier or kept(dep))
            earlier.update(job.id for job in _jobs_of(item))
            earlier.add(item.id)

    def batch(self, batch_id: str, queue: str | None) -> BatchRecord | None:
        """The batch's record, searching every queue when ``queue`` is None."""
        with self._store.cond:
            stored = self._find(batch_id, queue, self._store.tick())
            return None if stored is None else stored.record()

    def cancel_batch(self, batch_id: str, queue: str | None, reason: str) -> BatchRecord | None:
        """Pending members cancelled, running ones asked to stop; see ``BatchPort``."""
        with self._store.cond:
            now = self._store.tick()
            stored = self._find(batch_id, queue, now)
            if stored is None:
                return None
            if stored.progress.finished or stored.progress.cancel_requested:
                return stored.record()
            stored.progress = stored.progress.cancel()
            stored.reason = reason
            state = self._store.queue(stored.queue)
            for job_id in stored.members:
                entry = state.jobs.get(job_id)
                if entry is None or (stored.queue, job_id) not in self._member_of:
                    continue
                if entry.state.on_cancel() is not entry.state:
                    self._store.cancelled(state, entry, reason, now)
                elif entry.state is JobState.ACTIVE and entry.stop is None:
                    entry.stop = reason
            return stored.record()

    def members(self, batch_id: str, queue: str) -> list[str] | None:
        """The batch's member ids, in its order."""
        with self._store.cond:
            stored = self._find(batch_id, queue, self._store.tick())
            return None if stored is None else list(stored.members)

    def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """The jobs' records, under one hold of the lock."""
        with self._store.cond:
            state = self._store.find(queue, self._store.tick())
            entries = [None if state is None else state.jobs.get(job_id) for job_id in job_ids]
            return [None if entry is None else self._records.record(entry) for entry in entries]

    def batches(self, queue: str, offset: int, limit: int) -> list[BatchRecord]:
        """The queue's batches still kept, newest first."""
        with self._store.cond:
            now = self._store.tick()
            kept = [
                stored
                for (name, batch_id) in list(self._batches)
                if name == queue and (stored := self._find(batch_id, queue, now)) is not None
            ]
            kept.reverse()
            return [stored.record() for stored in kept[offset : offset + limit]]

    # -- the store's hook -----------------------------------------------------------------------

    def ended(self, state: QueueState, entry: Entry, now: datetime) -> None:
        """``entry``'s job ended (it is in its final state, or removed): count it once in its
        batch, and fire what its end fires."""
        batch_id = self._member_of.pop((state.name, entry.job_id), None)
        stored = self._batches.get((state.name, batch_id)) if batch_id is not None else None
        if stored is None:
            return
        end = _ENDS.get(entry.state, MemberEnd.CANCELLED)
        stored.progress, fired = stored.progress.ended(end)
        self._fire(state, stored, fired, now)

    # -- parts ----------------------------------------------------------------------------------

    def _open(
        self, batch: Batch, callbacks: dict[Callback, tuple[Job, bytes]], now: datetime
    ) -> None:
        """Store the batch and its members' membership (before the members: one that ends at
        its enqueue, its dependency already failed, is counted)."""
        queue = batch.queue
        self._batches[(queue, batch.id)] = _Stored(
            batch.id, queue, batch.progress(), now, [job.id for job in batch.jobs], callbacks
        )
        for job in batch.jobs:
            self._member_of[(queue, job.id)] = batch.id
        for which, job in batch.callbacks.items():
            self._callback_of[(queue, job.id)] = (batch.id, which)

    def _fire(
        self, state: QueueState, stored: _Stored, fired: Sequence[Callback], now: datetime
    ) -> None:
        put = self.put
        assert put is not None
        for which in fired:
            stored.fired.add(which)
            chosen = stored.callbacks.get(which)
            if chosen is not None:
                self._callback_of.pop((stored.queue, chosen[0].id), None)
                put(chosen[0], chosen[1], now)
        if stored.progress.finished and stored.finished_at is None:
            stored.finished_at = now
            for which, (job, _) in stored.callbacks.items():  # those that never fire
                if self._callback_of.get((stored.queue, job.id)) == (stored.id, which):
                    del self._callback_of[(stored.queue, job.id)]
            self._deps.ended_id(state, stored.id, not stored.progress.succeeded, now)
        if fired:
            self._store.cond.notify_all()

    def _find(self, batch_id: str, queue: str | None, now: datetime) -> _Stored | None:
        names = [queue] if queue is not None else self._store.names()
        for name in names:
            stored = self._batches.get((name, batch_id))
            if stored is None:
                continue
            if stored.finished_at is not None and stored.finished_at + self._ttl <= now:
                del self._batches[(name, batch_id)]
                return None
            return stored
        return None

    def _kept(self, queue: str, batch_id: str) -> _Stored | None:
        """The batch, unless unknown or kept past its time (then forgotten: its id is free)."""
        return self._find(batch_id, queue, self._store.clock.now())

    def _as_dependency(self, state: QueueState, batch_id: str) -> JobState | None:
        stored = self._kept(state.name, batch_id)
        if stored is None:
            return None
        if not stored.progress.finished:
            return JobState.WAITING
        return JobState.COMPLETED if stored.progress.succeeded else JobState.CANCELLED


def _jobs_of(item: Job | Batch) -> tuple[Job, ...]:
    return item.jobs if isinstance(item, Batch) else (item,)


def _ids_of(item: Job | Batch) -> list[str]:
    """Every id ``item`` takes: a job's, or a batch's own, its members' and callbacks'."""
    if isinstance(item, Job):
        return [item.id]
    return [item.id, *(job.id for job in (*item.jobs, *item.callbacks.values()))]
