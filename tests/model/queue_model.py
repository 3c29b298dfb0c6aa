"""A small pure model of the promised queue semantics: a dict of jobs and a few small maps.

The state machine (test_queue_model.py) runs every call against a real adapter and this model,
and compares. Lease tokens are minted by the adapter; the model records the ones it is given.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from foundry.domain import JobState
from foundry.ports import UNSTARTED_LAPSES_MAX, Duplicate, Enqueued, EnqueueOutcome

PENDING = "pending"  # READY or DELAYED, by run_at versus now
ACTIVE, COMPLETED, DEAD, CANCELLED = "active", "completed", "dead", "cancelled"
WAITING = "waiting"  # for the jobs in ``waits``
_FAILED = (DEAD, CANCELLED)


@attrs.define
class ModelJob:
    """What the model knows of one job."""

    id: str
    queue: str
    priority: int
    max_attempts: int
    seq: int
    run_at: datetime
    unique: tuple[str, str] | None = None  # (key, until)
    state: str = PENDING
    attempts: int = 0
    token: str | None = None
    deadline: datetime | None = None
    last: tuple[str, str, JobState] | None = None  # (token, op, state it left)
    errors: int = 0
    reason: str | None = None
    stop: str | None = None  # a cancel asked the running job to stop
    waits: set[str] = attrs.Factory(set)  # the jobs it still waits for
    after_failure: str = "dead"  # dead, cancel or run, when a job it waits for fails
    ahead: bool = False  # its lease was claimed ahead and its start is not reported yet
    lapses: int = 0  # its leases that lapsed while ahead (attempts given back)


@attrs.define
class ModelBatch:
    """What the model knows of one batch: its members not yet ended (in dispatch order), its
    counts, and the callback jobs its end enqueues."""

    id: str
    queue: str
    members: list[str]
    callbacks: dict[str, ModelJob]
    allow_failures: bool
    total: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    cancel_requested: bool = False
    caught: bool = False
    fired: set[str] = attrs.Factory(set)
    succeeded: bool = False  # then fired (set at its end)

    @property
    def finished(self) -> bool:
        """Every member ended."""
        return self.completed + self.failed + self.cancelled == self.total


@attrs.define
class QueueModel:
    """The expected behaviour of any queue adapter, kept by hand."""

    now: datetime
    jobs: dict[str, ModelJob] = attrs.Factory(dict)
    seqs: dict[str, int] = attrs.Factory(dict)
    unique: dict[tuple[str, str], tuple[str, datetime]] = attrs.Factory(dict)
    claims: dict[str, tuple[datetime, list[tuple[str, str]]]] = attrs.Factory(dict)
    totals: dict[tuple[str, str], int] = attrs.Factory(dict)
    paused: set[str] = attrs.Factory(set)
    deleted: set[str] = attrs.Factory(set)
    batches: dict[str, ModelBatch] = attrs.Factory(dict)

    def state(self, job: ModelJob) -> JobState:
        """The job's state as ``get`` reports it."""
        if job.state == PENDING:
            return JobState.READY if job.run_at <= self.now else JobState.DELAYED
        return JobState(job.state)

    def count(self, queue: str, what: str, by: int = 1) -> None:
        """Add to a running total of a queue (completed, failed, stale_rejected)."""
        self.totals[(queue, what)] = self.totals.get((queue, what), 0) + by

    def next_seq(self, queue: str) -> int:
        """The queue's next sequence number."""
        self.seqs[queue] = self.seqs.get(queue, 0) + 1
        return self.seqs[queue]

    def boundaries(self) -> list[datetime]:
        """Future moments where behaviour changes: run times, deadlines, key and claim expiry."""
        moments = [j.run_at for j in self.jobs.values() if j.state == PENDING]
        moments += [j.deadline for j in self.jobs.values() if j.deadline is not None]
        moments += [expires for _, expires in self.unique.values()]
        moments += [expires for expires, _ in self.claims.values()]
        return sorted({moment for moment in moments if moment >= self.now})

    # -- enqueue ------------------------------------------------------------------------------

    def enqueue(self, job: ModelJob, unique_ttl: timedelta) -> EnqueueOutcome:
        """Store ``job`` unless its id is known (no change) or its unique key is held."""
        if job.id in self.jobs:
            return Enqueued(job.id)
        if job.unique is not None:
            slot = (job.queue, job.unique[0])
            held = self.unique.get(slot)
            if held is not None and self.now < held[1]:
                return Duplicate(job.id, held[0])
            self.unique[slot] = (job.id, self.now + unique_ttl)
        job.seq = self.next_seq(job.queue)
        self.jobs[job.id] = job
        self.deleted.discard(job.id)
        self._wait(job)
        return Enqueued(job.id)

    def _wait(self, job: ModelJob) -> None:
        """A new job waits for the jobs in ``job.waits`` that have not ended (or is dead)."""
        states = {dep: self.dep_state(dep) for dep in sorted(job.waits)}
        job.waits = {dep for dep, state in states.items() if state not in (COMPLETED, *_FAILED)}
        if any(state in _FAILED for state in states.values()) and job.after_failure != "run":
            job.waits = set()
            self.fail_waiting(job)
        elif job.waits:
            job.state = WAITING

    def dep_state(self, dep: str) -> str:
        """The state of a job, or of a batch as a dependency: waiting while it runs, then
        completed if ``then`` fired, else cancelled."""
        if dep in self.jobs:
            return self.jobs[dep].state
        batch = self.batches[dep]
        if not batch.finished:
            return WAITING
        return COMPLETED if batch.succeeded else CANCELLED

    def fail_waiting(self, job: ModelJob) -> None:
        """A job waiting for one that failed goes dead (an error recorded) or is cancelled."""
        if job.after_failure == "cancel":
            self.end_cancelled(job, "dependency failed")
            return
        job.errors += 1
        self.bury(job, "dependency failed")

    def ended(self, job_id: str, failed: bool) -> None:
        """The jobs waiting for ``job_id`` wait for one fewer, or fail with it; then its batch
        counts it (after them, as the adapters do)."""
        for other in list(self.jobs.values()):
            if other.state != WAITING or job_id not in other.waits:
                continue
            other.waits.discard(job_id)
            if failed and other.after_failure != "run":
                other.waits = set()
                self.fail_waiting(other)
            elif not other.waits:
                other.state = PENDING
        self.member_ended(job_id)

    def release_key(self, job: ModelJob, only_until: str | None = None) -> None:
        """Free the job's unique key if it still holds it (and ``until`` matches)."""
        if job.unique is None or (only_until is not None and job.unique[1] != only_until):
            return
        slot = (job.queue, job.unique[0])
        if self.unique.get(slot, ("", self.now))[0] == job.id:
            del self.unique[slot]

    # -- claim --------------------------------------------------------------------------------

    def held_by_claim(self, claim_token: str | None) -> list[tuple[str, str]] | None:
        """(job id, lease token) still held by a remembered claim token; None if unknown."""
        if claim_token is None or claim_token not in self.claims:
            return None
        expires, leases = self.claims[claim_token]
        if self.now >= expires:
            del self.claims[claim_token]
            return None
        return [(i, t) for i, t in leases if self.holds(i, t)]

    def next_ready(self, queues: list[str], limit: int) -> list[ModelJob]:
        """The jobs a claim takes, in order: queue by queue, priority desc, seq asc."""
        taken: list[ModelJob] = []
        for queue in queues:
            ready = [
                j
                for j in self.jobs.values()
                if j.queue == queue
                and queue not in self.paused
                and self.state(j) is JobState.READY
                and j not in taken
            ]
            ready.sort(key=lambda j: (-j.priority, j.seq))
            taken += ready[: limit - len(taken)]
        return taken

    def start(self, job: ModelJob, token: str, lease: timedelta, *, ahead: bool = False) -> None:
        """The job was claimed with ``token`` (held ahead: unstarted, unless it lapsed so
        unstarted too often already)."""
        job.state = ACTIVE
        job.attempts += 1
        job.token = token
        job.deadline = self.now + lease
        job.ahead = ahead and job.lapses < UNSTARTED_LAPSES_MAX
        self.release_key(job, "started")

    def lapses_of(self, job_id: str) -> int:
        """What a lease of the job says of its unstarted lapses: held ahead, their count."""
        job = self.jobs[job_id]
        return job.lapses if job.ahead else 0

    def started(self, job_id: str, token: str) -> None:
        """Lease ``token`` reported its job started: a lapse spends its attempt from now on."""
        if self.holds(job_id, token):
            self.jobs[job_id].ahead = False

    def remember_claim(
        self, claim_token: str | None, leases: list[tuple[str, str]], lease: timedelta
    ) -> None:
        """A claim with a token remembers what it took for the lease duration."""
        if claim_token is not None:
            self.claims[claim_token] = (self.now + lease, leases)

    # -- lease operations ---------------------------------------------------------------------

    def holds(self, job_id: str, token: str) -> bool:
        """Whether ``token`` is the job's current lease."""
        job = self.jobs.get(job_id)
        return job is not None and job.state == ACTIVE and job.token == token

    def resent(self, job_id: str, token: str, op: str) -> JobState | None:
        """The state ``op`` left if this is its re-send, else None."""
        job = self.jobs.get(job_id)
        last = None if job is None else job.last
        return last[2] if last is not None and last[:2] == (token, op) else None

    def end_lease(self, job: ModelJob, op: str) -> None:
        """The lease ended by ``op``; remember it so a re-send is recognised."""
        job.last = (job.token or "", op, self.state(job))
        job.token = None
        job.deadline = None
        job.ahead = False

    def complete(self, job: ModelJob) -> None:
        """Apply a completion."""
        job.state = COMPLETED
        self.count(job.queue, "completed")
        self.release_key(job)
        self.ended(job.id, failed=False)
        self.end_lease(job, "complete")

    def fail(self, job: ModelJob, retry_in: timedelta | None, reason: str) -> None:
        """Apply a failure: retry after ``retry_in`` (new seq), or dead when it is None."""
        job.errors += 1
        self.count(job.queue, "failed")
        if retry_in is None:
            self.bury(job, reason)
        elif job.stop is not None:
            self.end_cancelled(job, job.stop)
        else:
            job.state = PENDING
            job.seq = self.next_seq(job.queue)
            job.run_at = self.now + retry_in
        self.end_lease(job, "fail")

    def release(self, job: ModelJob, delay: timedelta = timedelta(0)) -> None:
        """Apply a release: pending again (after ``delay``), seq kept, attempt given back;
        cancelled if a cancel asked the job to stop."""
        if job.stop is not None:
            self.end_cancelled(job, job.stop)
            self.end_lease(job, "release")
            return
        job.state = PENDING
        job.attempts -= 1
        if delay > timedelta(0):
            job.run_at = self.now + delay
        self.end_lease(job, "release")

    def bury(self, job: ModelJob, reason: str) -> None:
        """The job is dead with ``reason``."""
        job.state = DEAD
        job.reason = reason
        job.stop = None
        job.lapses = 0
        self.release_key(job)
        self.ended(job.id, failed=True)

    def reap(self) -> int:
        """Recover every lease whose deadline is before now, by deadline, then job id (what
        one sets off, dependants and batch callbacks, gets its seqs in that order); returns
        how many."""
        expired = sorted(
            (
                j
                for j in self.jobs.values()
                if j.state == ACTIVE and j.deadline is not None and j.deadline < self.now
            ),
            key=lambda j: (j.deadline, j.id),
        )
        for job in expired:
            if job.stop is not None:
                self.end_cancelled(job, job.stop)
            elif job.ahead:  # never reported started: the attempt is given back
                job.attempts -= 1
                job.lapses += 1
                job.state = PENDING
            elif job.attempts >= job.max_attempts:
                job.errors += 1
                self.bury(job, "lease lost")
            else:
                job.state = PENDING
            self.end_lease(job, "lost")
        return len(expired)

    # -- admin --------------------------------------------------------------------------------

    def delete(self, job_id: str) -> bool:
        """Remove a pending, waiting or dead job; False for a running or ended one."""
        job = self.jobs.get(job_id)
        if job is None or job.state not in (PENDING, WAITING, DEAD):
            return False
        self.release_key(job)
        del self.jobs[job_id]
        self.ended(job_id, failed=True)
        self.deleted.add(job_id)
        return True

    def delete_pending(self, job_id: str) -> bool:
        """Remove a pending or waiting job; False (nothing changed) for one in any other
        state."""
        job = self.jobs.get(job_id)
        return job is not None and job.state in (PENDING, WAITING) and self.delete(job_id)

    def delete_dead(self, job_id: str) -> bool:
        """Remove a dead job; False (nothing changed) for one in any other state."""
        job = self.jobs.get(job_id)
        return job is not None and job.state == DEAD and self.delete(job_id)

    def cancel(self, job_id: str, reason: str) -> JobState | None:
        """A pending job ends cancelled; a running one is asked to stop (the first reason
        kept); an ended one is left; None if unknown."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        if job.state in (PENDING, WAITING):
            self.end_cancelled(job, reason)
        elif job.state == ACTIVE and job.stop is None:
            job.stop = reason
        return self.state(job)

    def end_cancelled(self, job: ModelJob, reason: str) -> None:
        """The job ends cancelled with ``reason``: its key freed, no stop left."""
        job.state = CANCELLED
        job.reason = reason
        job.stop = None
        job.waits = set()
        self.release_key(job)
        self.ended(job.id, failed=True)

    def requeue(self, job: ModelJob) -> int:
        """A dead job back to ready: new seq, attempts reset, history kept."""
        if job.state != DEAD:
            return 0
        job.state = PENDING
        job.attempts = 0
        job.reason = None
        job.seq = self.next_seq(job.queue)
        job.run_at = self.now
        return 1

    # -- batches ------------------------------------------------------------------------------

    def enqueue_batch(
        self, batch: ModelBatch, members: list[ModelJob], unique_ttl: timedelta
    ) -> None:
        """Store the batch, then its members (a member that ends at once is counted); a
        re-send changes nothing."""
        if batch.id in self.batches:
            return
        batch.total = len(members)
        batch.members = [job.id for job in members]
        self.batches[batch.id] = batch
        for job in members:
            self.enqueue(job, unique_ttl)

    def member_ended(self, job_id: str) -> None:
        """Count a member's end once in its batch, and enqueue the callbacks it fires: catch at
        the first death; then (all completed, or failures allowed and not cancelled) and
        finally at the last end."""
        batch = next((b for b in self.batches.values() if job_id in b.members), None)
        if batch is None:
            return
        batch.members.remove(job_id)
        job = self.jobs.get(job_id)
        how = job.state if job is not None else CANCELLED
        fired = []
        if how == COMPLETED:
            batch.completed += 1
        elif how == DEAD:
            batch.failed += 1
            if not batch.caught:
                batch.caught = True
                fired.append("catch")
        else:
            batch.cancelled += 1
        if batch.finished:
            everything = batch.completed == batch.total
            batch.succeeded = not batch.cancel_requested and (batch.allow_failures or everything)
            if batch.succeeded:
                fired.append("then")
            fired.append("finally")
        for which in fired:
            batch.fired.add(which)
            callback = batch.callbacks.get(which)
            if callback is not None:
                callback.run_at = self.now
                self.enqueue(callback, timedelta(seconds=1))
        if batch.finished:
            self.ended(batch.id, failed=not batch.succeeded)

    def cancel_batch(self, batch_id: str, reason: str) -> bool:
        """Cancel the batch's pending members (in dispatch order), ask its running ones to
        stop; whether the batch is known."""
        batch = self.batches.get(batch_id)
        if batch is None:
            return False
        if batch.finished or batch.cancel_requested:
            return True
        batch.cancel_requested = True
        for job_id in list(batch.members):
            job = self.jobs.get(job_id)
            if job is None or job_id not in batch.members:
                continue
            if job.state in (PENDING, WAITING):
                self.end_cancelled(job, reason)
            elif job.state == ACTIVE and job.stop is None:
                job.stop = reason
        return True
