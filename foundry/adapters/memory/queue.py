"""MemoryQueue: the in-process QueuePort and WorkerRegistry, and the fake the tests use.

Jobs are stored codec-encoded and decoded on claim and inspection, so it accepts and rejects
exactly what the Redis queue does. Time comes only from the ``Clock``; ``claim(wait=...)``
alone waits in real time, on a condition that enqueue, release and retries notify.
Costs: enqueue and claim O(log n); reap O(active jobs); stats O(1).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
from loguru import logger

from foundry.adapters.memory.admin import MemoryQueueAdmin
from foundry.adapters.memory.store import COMPLETE, FAIL, LOST, RELEASE, Entry, QueueState
from foundry.domain import (
    Dead,
    Decision,
    ErrorInfo,
    Job,
    JobState,
    Retry,
    StaleLease,
    UndecodableJob,
    UniqueUntil,
)
from foundry.ports import ClaimRequest, Duplicate, Enqueued, EnqueueOutcome, Lease


class MemoryQueue(MemoryQueueAdmin):
    """Every queue promise (Q1-Q11) in one process, guarded by one lock."""

    def enqueue(self, job: Job) -> EnqueueOutcome:
        """Store ``job`` (see ``QueuePort.enqueue``)."""
        return self.enqueue_many([job])[0]

    def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Encode every job first (so a bad one writes nothing), then store them in order."""
        blobs = [self._codec.encode_job(job) for job in jobs]
        with self._cond:
            now = self._tick()
            outcomes = [self._store(job, blob, now) for job, blob in zip(jobs, blobs, strict=True)]
            self._cond.notify_all()
        return outcomes

    def claim(self, request: ClaimRequest) -> list[Lease]:
        """Lease up to ``request.limit`` jobs, queue by queue (see ``QueuePort.claim``)."""
        give_up_at = time.monotonic() + request.wait.total_seconds()
        token = request.claim_token
        with self._cond:
            while True:
                now = self._tick()
                if token is not None and token in self._claims:
                    return self._held(token)
                leases = self._take(request, now)
                remaining = give_up_at - time.monotonic()
                if leases or remaining <= 0:
                    self._remember_claim(token, leases, now + request.lease)
                    return leases
                self._cond.wait(remaining)

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        """Extend each lease still held to now + ``duration``; None for a lost one."""
        with self._cond:
            now = self._tick()
            return [self._renew(lease, now + duration) for lease in leases]

    def complete(self, lease: Lease, result: Any = None) -> None:
        """Mark the job completed; its record is kept for ``completed_ttl``."""
        encoded = self._codec.encode_result(result)
        with self._cond:
            self._complete(lease, encoded, self._tick())

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool]:
        """``complete`` each lease under one hold of the lock; ``False`` where it was stale."""
        chosen = [None] * len(leases) if results is None else results
        encoded = [self._codec.encode_result(result) for result in chosen]
        with self._cond:
            now = self._tick()
            pairs = zip(leases, encoded, strict=True)
            return [self._completed(lease, blob, now) for lease, blob in pairs]

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool], list[Lease]]:
        """``complete_many`` then ``claim``: nothing to save by doing both in one call here."""
        return self.complete_many(leases, results), self.claim(request)

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        """Record ``error`` with this attempt's number, then retry (new seq) or bury."""
        with self._cond:
            now = self._tick()
            entry, fresh = self._current(lease, FAIL)
            if not fresh:
                return entry.last_state or entry.state
            state = self._queues[entry.queue]
            state.failed += 1
            entry.errors.append(attrs.evolve(error, attempt=entry.attempts, at=error.at or now))
            entry.end_lease(FAIL, entry.state)
            match decision:
                case Retry(delay=delay):
                    entry.seq = state.next_seq()
                    state.schedule(entry, now + max(delay, timedelta(0)), now)
                    self._cond.notify_all()
                case Dead(reason=reason):
                    self._bury(state, entry, reason, now)
            entry.last_state = entry.state
            return entry.state

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """Back to the front of its priority (seq kept), after ``delay``; attempt not spent."""
        with self._cond:
            now = self._tick()
            entry, fresh = self._current(lease, RELEASE)
            if not fresh:
                return
            entry.attempts -= 1
            run_at = now + delay if delay > timedelta(0) else min(entry.run_at, now)
            entry.end_lease(RELEASE, JobState.READY if run_at <= now else JobState.DELAYED)
            self._queues[entry.queue].schedule(entry, run_at, now)
            self._cond.notify_all()

    def reap(self) -> int:
        """Recover every lease whose deadline is strictly before now."""
        with self._cond:
            now = self._tick()
            count = 0
            for state in self._queues.values():
                for entry in state.expired_leases(now):
                    self._lose(state, entry, now)
                    count += 1
            if count:
                self._cond.notify_all()
            return count

    # -- steps --------------------------------------------------------------------------------

    def _complete(self, lease: Lease, encoded: bytes, now: datetime) -> None:
        entry, fresh = self._current(lease, COMPLETE)
        if not fresh:
            return
        state = self._queues[entry.queue]
        entry.end_lease(COMPLETE, JobState.COMPLETED)
        state.move(entry, JobState.COMPLETED)
        entry.result = encoded
        entry.finished_at = now
        state.completed += 1
        self._unique.release(entry)
        self._completed_expiry.add(now + self._completed_ttl, entry.queue, entry.job_id)

    def _completed(self, lease: Lease, encoded: bytes, now: datetime) -> bool:
        try:
            self._complete(lease, encoded, now)
        except StaleLease:
            return False
        return True

    def _store(self, job: Job, blob: bytes, now: datetime) -> EnqueueOutcome:
        state = self._queue(job.queue)
        if job.id in state.jobs:
            return Enqueued(job.id)
        if job.unique is not None:
            holder = self._unique.holder(job.queue, job.unique.key, now)
            if holder is not None:
                return Duplicate(job.id, holder)
            self._unique.take(job.queue, job.id, job.unique, now)
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
        state.add(entry, now)
        return Enqueued(job.id)

    def _take(self, request: ClaimRequest, now: datetime) -> list[Lease]:
        leases: list[Lease] = []
        deadline = now + request.lease
        for name in request.queues:
            state = self._queues.get(name)
            if state is None or state.paused:
                continue
            state.promote(now)
            while len(leases) < request.limit and (entry := state.pop_ready()) is not None:
                taken = self._start(state, entry, deadline, request.worker, now)
                if taken is not None:
                    leases.append(taken)
        return leases

    def _start(
        self, state: QueueState, entry: Entry, deadline: datetime, worker: str, now: datetime
    ) -> Lease | None:
        try:
            job = self._codec.decode_job(entry.blob, entry.job_id)
        except UndecodableJob as error:
            entry.errors.append(ErrorInfo(type="UndecodableJob", message=str(error), at=now))
            self._bury(state, entry, f"undecodable: {error.reason}", now)
            return None
        entry.attempts += 1
        entry.token = secrets.token_urlsafe(16)
        entry.deadline = deadline
        entry.worker = worker
        state.move(entry, JobState.ACTIVE)
        self._unique.release(entry, UniqueUntil.STARTED)
        return Lease(job, entry.token, entry.attempts, deadline)

    def _held(self, claim_token: str) -> list[Lease]:
        held = []
        for queue, job_id, token in self._claims[claim_token]:
            entry = self._entry(queue, job_id)
            if entry is not None and entry.holds(token) and entry.deadline is not None:
                job = self._codec.decode_job(entry.blob, job_id)
                held.append(Lease(job, token, entry.attempts, entry.deadline))
        return held

    def _remember_claim(
        self, claim_token: str | None, leases: list[Lease], until: datetime
    ) -> None:
        if claim_token is None:
            return
        self._claims[claim_token] = [(lease.queue, lease.job_id, lease.token) for lease in leases]
        self._claim_expiry.add(until, "", claim_token)

    def _renew(self, lease: Lease, deadline: datetime) -> Lease | None:
        entry = self._entry(lease.queue, lease.job_id)
        if entry is None or not entry.holds(lease.token):
            return None
        entry.deadline = deadline
        return attrs.evolve(lease, deadline=deadline)

    def _lose(self, state: QueueState, entry: Entry, now: datetime) -> None:
        with logger.contextualize(job_id=entry.job_id, queue=entry.queue, attempt=entry.attempts):
            logger.warning("lease {} expired at {}; recovering", entry.token, entry.deadline)
        if entry.attempts >= entry.max_attempts:
            entry.errors.append(self._lost_error(entry, now))
            entry.end_lease(LOST, JobState.DEAD)
            self._bury(state, entry, "lease lost", now)
        else:
            entry.end_lease(LOST, JobState.READY)
            state.schedule(entry, min(entry.run_at, now), now)
