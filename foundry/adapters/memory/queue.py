"""MemoryQueue: the in-process QueuePort and WorkerRegistry, and the fake the tests use.

It builds its parts and hands each port operation to the part that does it: ``MemoryStore``
(every queue's state under one lock), ``EntryCodec`` (stored forms), ``DeadLetters``
(burying and retention), ``MemoryClaimer``, ``MemoryWrites``, ``MemoryAdmin`` and
``MemoryWorkers`` and ``MemorySchedules``; enqueueing is done here.

Jobs are stored codec-encoded and decoded on claim and inspection, so it accepts and rejects
exactly what the Redis queue does. Time comes only from the ``Clock``; a claim's ``wait`` alone
passes in real time, on a condition that enqueue, release, retries and resume notify.
Costs: enqueue and claim O(log n); reap O(active jobs); stats O(1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from foundry.adapters.codec import Codec
from foundry.adapters.memory.admin import MemoryAdmin
from foundry.adapters.memory.batches import MemoryBatches
from foundry.adapters.memory.claiming import MemoryClaimer
from foundry.adapters.memory.dead import DeadLetters
from foundry.adapters.memory.dependencies import Dependencies, check_known
from foundry.adapters.memory.records import EntryCodec
from foundry.adapters.memory.schedules import MemorySchedules
from foundry.adapters.memory.store import Entry, MemoryStore, QueueState
from foundry.adapters.memory.workers import MemoryWorkers
from foundry.adapters.memory.writes import MemoryWrites
from foundry.domain import Decision, ErrorInfo, Job, JobState, QueueBroken
from foundry.domain.batch import Batch
from foundry.domain.given import (
    given_ids,
    given_name,
    given_optional_queue,
    given_queue,
    given_queues,
    given_state,
)
from foundry.domain.job import given_id
from foundry.ports import (
    ClaimRequest,
    Clock,
    DeadLetter,
    DeadLetterRetention,
    Duplicate,
    Enqueued,
    EnqueueOutcome,
    JobRecord,
    Lease,
    QueueStats,
    WorkerInfo,
)
from foundry.ports.batches import BatchRecord
from foundry.ports.schedule_types import Fired, Firing, Poll, ScheduleEntry, ScheduleListing

#: The retention a queue has unless told otherwise.
DEFAULT_RETENTION = DeadLetterRetention()


class MemoryQueue:
    """Every queue promise (Q1-Q11) in one process, guarded by one lock."""

    def __init__(
        self,
        clock: Clock,
        codec: Codec | None = None,
        retention: DeadLetterRetention = DEFAULT_RETENTION,
        completed_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        store = MemoryStore(clock, completed_ttl)
        records = EntryCodec(codec or Codec())
        deps = Dependencies(store.cond.notify_all, store.cancelled)
        batches = MemoryBatches(store, records, deps, completed_ttl)

        def ended(state: QueueState, entry: Entry, failed: bool, now: datetime) -> None:
            deps.ended(state, entry, failed, now)
            batches.ended(state, entry, now)

        store.on_end = ended
        dead = DeadLetters(retention, store.unique, store.settled, ended)
        deps.bury = dead.bury
        batches.put = self._put
        self._deps = deps
        self._batches = batches
        self._store = store
        self._records = records
        self._claimer = MemoryClaimer(store, records, dead)
        self._writes = MemoryWrites(store, records, dead)
        self._admin = MemoryAdmin(store, records)
        self._workers = MemoryWorkers(clock)
        self._schedules = MemorySchedules(store, records, self._put)

    # -- jobs in, jobs out ----------------------------------------------------------------------

    def enqueue(self, job: Job) -> EnqueueOutcome:
        """Store ``job`` (see ``QueuePort.enqueue``)."""
        return self.enqueue_many([job])[0]

    def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Encode every job first (so a bad one writes nothing), then store them in order."""
        blobs = [self._records.encode_job(job) for job in jobs]
        with self._store.cond:
            now = self._store.tick()
            self._batches.refuse_taken_ids(jobs)
            for queue in {job.queue for job in jobs if job.after}:
                same = [job for job in jobs if job.queue == queue]
                check_known(self._store.queue(queue), same, self._batches.known(queue))
            outcomes = [self._put(job, blob, now) for job, blob in zip(jobs, blobs, strict=True)]
            self._store.cond.notify_all()
        return outcomes

    @property
    def claims_from_forks(self) -> bool:
        """No: the jobs live in this process's memory, a fork has a copy."""
        return False

    def claim(self, request: ClaimRequest) -> list[Lease]:
        """Queue by queue (see ``QueuePort.claim``)."""
        return self._claimer.claim(request)

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool | QueueBroken], list[Lease]]:
        """``complete_many`` then ``claim``: nothing to save by doing both in one call here
        (no queue's data can be refused here: every answer is a ``bool``)."""
        return self.complete_many(leases, results), self.claim(request)

    def _put(self, job: Job, blob: bytes, now: datetime) -> EnqueueOutcome:
        state = self._store.queue(job.queue)
        if job.id in state.jobs:
            return Enqueued(job.id)
        unique = self._store.unique
        if job.unique is not None:
            holder = unique.holder(job.queue, job.unique.key, now)
            if holder is not None:
                return Duplicate(job.id, holder)
            unique.take(job.queue, job.id, job.unique, now)
        entry = Entry(
            job.id,
            job.queue,
            blob,
            priority=job.priority,
            max_attempts=job.max_attempts,
            unique=job.unique,
            state=JobState.READY,
            seq=state.next_seq(),
            enqueued_at=now,
            run_at=job.run_at(now),
        )
        if not (job.after and self._deps.wait(state, entry, job, now)):
            state.add(entry, now)
        return Enqueued(job.id)

    # -- batches (BatchPort) --------------------------------------------------------------------

    def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """Under one hold of the lock (see ``BatchPort.enqueue_batches``)."""
        self._batches.enqueue_batches(items)

    def batch(self, batch_id: str, queue: str | None = None) -> BatchRecord | None:
        """Every queue is searched when ``queue`` is None."""
        return self._batches.batch(given_id(batch_id, "batch"), given_optional_queue(queue))

    def cancel_batch(
        self, batch_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord | None:
        """See ``BatchPort.cancel_batch``."""
        return self._batches.cancel_batch(
            given_id(batch_id, "batch"), given_optional_queue(queue), reason
        )

    def batches(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[BatchRecord]:
        """Newest first."""
        return self._batches.batches(given_queue(queue), offset, limit)

    def members(self, batch_id: str, queue: str) -> list[str] | None:
        """See ``BatchPort.members``."""
        return self._batches.members(given_id(batch_id, "batch"), given_queue(queue))

    def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """Under one hold of the lock (see ``BatchPort.job_records``)."""
        return self._batches.job_records(given_ids(job_ids) or [], given_queue(queue))

    # -- leases ---------------------------------------------------------------------------------

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        """Extend each lease still held; None for a lost one."""
        return self._writes.renew(leases, duration)

    def complete(self, lease: Lease, result: Any = None) -> None:
        """The record is kept for ``completed_ttl``."""
        self._writes.complete(lease, result)

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool | QueueBroken]:
        """Under one hold of the lock (no queue's data is refused here: every answer is a
        ``bool``)."""
        return [*self._writes.complete_many(leases, results)]

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        """Retry (new seq) or bury."""
        return self._writes.fail(lease, error, decision)

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """Front of its priority (seq kept), after ``delay``."""
        self._writes.release(lease, delay)

    def reap(self) -> int:
        """O(active jobs)."""
        return self._writes.reap()

    # -- inspection and admin -------------------------------------------------------------------

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """Every queue is searched when ``queue`` is None."""
        return self._admin.get(given_id(job_id), given_optional_queue(queue))

    def wait(self, job_id: str, timeout: timedelta, queue: str | None = None) -> JobRecord | None:
        """Waits on the store's ``settled`` condition (see ``QueuePort.wait``)."""
        return self._admin.wait(given_id(job_id), timeout, given_optional_queue(queue))

    def on_settled(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` whenever a job ends (from the thread that ends it, under the
        store's lock: it must only hand the news on); returns what stops the calls."""
        listeners = self._store.settled.listeners
        with self._store.cond:
            listeners.add(listener)
        return partial(self._forget_listener, listener)

    def _forget_listener(self, listener: Callable[[], None]) -> None:
        with self._store.cond:
            self._store.settled.listeners.discard(listener)

    def stats(self, queue: str) -> QueueStats:
        """O(1)."""
        return self._admin.stats(given_queue(queue))

    def queues(self) -> list[str]:
        """Sorted."""
        return self._admin.queues()

    def stats_many(self, queues: Sequence[str]) -> list[QueueStats]:
        """``stats`` of each queue."""
        return self._admin.stats_many(given_queues(queues))

    def oldest_ready_age(self, queues: Sequence[str]) -> list[timedelta | None]:
        """Scans each queue's jobs (a fake's cost)."""
        return self._admin.oldest_ready_age(given_queues(queues))

    def jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 100
    ) -> list[JobRecord]:
        """Sorts the queue's entries."""
        return self._admin.jobs(given_queue(queue), given_state(state), offset=offset, limit=limit)

    def dead(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        return self._admin.dead(given_queue(queue), offset=offset, limit=limit)

    def requeue_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """Oldest first, each with a new seq and 0 attempts."""
        return self._admin.requeue_dead(given_queue(queue), given_ids(job_ids))

    def cancel(
        self, job_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState | None:
        """See ``QueuePort.cancel``."""
        return self._admin.cancel(given_id(job_id), given_optional_queue(queue), reason)

    def delete(self, queue: str, job_id: str) -> bool:
        """False if unknown, running or completed."""
        return self._admin.delete(given_queue(queue), given_id(job_id))

    def delete_pending(self, queue: str, job_id: str) -> bool:
        """Under the store's lock."""
        pending = (JobState.READY, JobState.DELAYED, JobState.WAITING)
        return self._admin.delete(given_queue(queue), given_id(job_id), pending)

    def delete_dead(self, queue: str, job_id: str) -> bool:
        """Under the store's lock."""
        return self._admin.delete(given_queue(queue), given_id(job_id), (JobState.DEAD,))

    def purge(self, queue: str) -> int:
        """Ready and delayed jobs."""
        return self._admin.purge(given_queue(queue))

    def purge_dead(self, queue: str) -> int:
        """Every dead letter."""
        return self._admin.purge_dead(given_queue(queue))

    def pause(self, queue: str) -> None:
        """Claims skip ``queue``."""
        self._admin.pause(given_queue(queue))

    def resume(self, queue: str) -> None:
        """Undo ``pause``."""
        self._admin.resume(given_queue(queue))

    # -- workers --------------------------------------------------------------------------------

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """Until now + ``ttl`` on the queue's clock."""
        self._workers.heartbeat(info, ttl)

    def workers(self) -> list[WorkerInfo]:
        """By id."""
        return self._workers.workers()

    def forget_worker(self, worker_id: str) -> None:
        """At once."""
        self._workers.forget_worker(worker_id)

    # -- periodic schedules (SchedulePort) ------------------------------------------------------

    def sync_schedules(self, entries: Sequence[ScheduleEntry], *, redefine: bool) -> None:
        """See ``SchedulePort.sync_schedules``."""
        self._schedules.sync_schedules(entries, redefine=redefine)

    def poll(self, queues: Sequence[str], limit: int, ahead: timedelta = timedelta(0)) -> Poll:
        """See ``SchedulePort.poll``."""
        return self._schedules.poll(queues, limit, ahead)

    def fire(self, firings: Sequence[Firing]) -> list[Fired]:
        """See ``SchedulePort.fire``."""
        return self._schedules.fire(firings)

    def orphan(self, queue: str, names: Sequence[str]) -> None:
        """See ``SchedulePort.orphan``."""
        self._schedules.orphan(queue, names)

    def schedule_states(self) -> ScheduleListing:
        """See ``SchedulePort.schedule_states``."""
        return self._schedules.schedule_states()

    def pause_schedule(self, queue: str, name: str) -> bool:
        """See ``SchedulePort.pause_schedule``."""
        return self._schedules.pause_schedule(given_queue(queue), given_name(name))

    def resume_schedule(self, queue: str, name: str, next_at: datetime) -> bool | None:
        """See ``SchedulePort.resume_schedule``."""
        return self._schedules.resume_schedule(given_queue(queue), given_name(name), next_at)

    def forget_schedule(self, queue: str, name: str) -> bool:
        """See ``SchedulePort.forget_schedule``."""
        return self._schedules.forget_schedule(given_queue(queue), given_name(name))
