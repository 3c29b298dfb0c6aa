"""The queue port: what framework code and the worker pool may ask of any queue backend."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from foundry.domain import Decision, ErrorInfo, Job, JobState, QueueBroken
from foundry.ports.queue_types import ClaimRequest, EnqueueOutcome, Lease, WorkerInfo

if TYPE_CHECKING:
    from foundry.ports.inspection import DeadLetter, JobRecord, QueueStats


@runtime_checkable
class QueuePort(Protocol):
    """Durable jobs with priorities, delays, leases, retries and dead letters.

    The promises every adapter keeps (the contract suite proves each one):

    * Q1 No loss: once ``enqueue`` returns, a job leaves only as completed, dead (with its
      errors) or by an explicit admin ``delete``/``purge``.
    * Q2 Order: among ready jobs of one queue, higher priority first, FIFO within a priority.
      ``claim`` over several queues drains them in the order given.
    * Q3 Delay: a job is never claimable before its run time, and is claimable from then on.
    * Q4 Lease: while a lease is valid no one else can claim its job; ``complete``, ``fail``,
      ``release`` with a stale token raise ``StaleLease`` and change nothing (it is counted).
    * Q5 Recovery: an expired lease returns the job to ready with the attempt counted; after
      ``max_attempts`` starts the job goes dead with reason ``"lease lost"``.
    * Q6 Attempts count starts, so a job that kills its worker every time still ends dead.
    * Q7 ``release`` puts a job back at the front of its priority without spending an attempt.
    * Q8 Re-sending ``enqueue`` (same job id), ``claim`` (same claim token), ``complete`` /
      ``fail`` / ``release`` (same lease token) changes nothing the second time.
    * Q9 While a job with the same unique key is pending (or running, per ``until``),
      ``enqueue`` returns ``Duplicate(existing_id)``.
    * Q10 Dead letters keep the payload and error history; they can be listed, requeued and
      purged, under an explicit retention policy.
    * Q11 Time comes from the ``Clock`` (memory) or the server (Redis), or a clock the test
      passes; nothing sleeps to move time.

    Backend failures raise ``QueueUnavailable``; bad input raises ``InvalidJob`` before
    anything is written. An argument of the wrong type (an id or queue name that is not a
    string, a lone string where a list of ids or names belongs, a ``jobs`` state that is not
    a ``JobState`` or its value) raises ``TypeError`` naming what to pass, before the backend
    is asked.
    """

    def enqueue(self, job: Job) -> EnqueueOutcome:
        """Store ``job``: ready now, or delayed until its schedule says, or ``WAITING`` while
        a job its ``after`` names has not completed (the completion of the last one makes it
        ready, or delayed until its own run time; one that goes dead, is cancelled or deleted
        makes it dead, or cancelled, with reason ``"dependency failed"``, or lets it run, as
        its ``after_failure`` says).

        Returns ``Enqueued`` (also when this id is already stored: re-sends are idempotent) or
        ``Duplicate`` when its unique key is held. Raises ``InvalidJob`` for a job the backend
        cannot store (payload over its limit, or an ``after`` id its queue does not hold:
        dependencies are jobs of the same queue enqueued before it, or earlier in the same
        ``enqueue_many``) and ``QueueUnavailable`` when unreachable.
        """
        ...

    def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Enqueue every job, in order, in as few round trips as the backend allows.

        Returns one outcome per job, in the same order. Validation happens before any write.
        """
        ...

    @property
    def claims_from_forks(self) -> bool:
        """Whether a process forked from this one may ``claim`` through this same object and
        reach the same jobs on the same clock (its connections are made again after a fork).
        The worker's pool then lets an idle child make the pool's blocking claim and start the
        first job itself, without a hop through the parent."""
        ...

    def claim(self, request: ClaimRequest) -> list[Lease]:
        """Lease up to ``request.limit`` ready jobs, taking its queues in the order given (Q2).

        Each claim counts an attempt (Q6) and holds the job for ``request.lease``. Paused queues
        are skipped. When nothing is ready, waits up to ``request.wait`` for a job to arrive,
        then returns what it has (possibly ``[]``). Re-sending the same ``claim_token`` returns
        the leases that token already holds instead of claiming more (Q8).
        """
        ...

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        """Extend each lease to now + ``duration``, in one round trip.

        A lease carrying ``progress`` stores it as its job's progress (shown by ``get``).
        Returns, in order, the renewed lease (new deadline; ``stop`` set when a cancel asked
        its job to stop) or ``None`` where the lease was lost (expired and reaped, or its job
        moved on): its holder must stop working on that job.
        """
        ...

    def complete(self, lease: Lease, result: Any = None) -> None:
        """Mark the leased job completed, keeping a JSON-compatible ``result`` for inspection.

        Raises ``StaleLease`` if ``lease`` no longer holds the job (Q4); a re-send of a
        completion that was applied is accepted silently (Q8). A result that cannot be stored
        (or would read back as something else: bytes, NaN, infinities) raises
        ``InvalidResult`` (naming its type) before anything is written; so do
        ``complete_many`` and ``complete_and_claim`` for any result of theirs.
        """
        ...

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool | QueueBroken]:
        """Complete every lease (with ``results[i]`` if given) in as few round trips as the
        backend allows; whether each was applied.

        Each is completed as ``complete`` would (re-sends accepted, Q8), except that a stale
        lease does not raise: its place in the answer is ``False`` (it is still counted); and
        a completion refused by its queue (``QueueBroken``: the backend answers but will not
        work on that queue's data) raises nothing: its place is that error, naming the queue
        (whether it was applied is not known; a re-send is accepted, Q8), and the other
        queues' completions stand. On ``QueueUnavailable`` none is known to have happened.
        """
        ...

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool | QueueBroken], list[Lease]]:
        """``complete_many(leases, results)`` then ``claim(request)``: in one round trip where
        the backend can; what each returns, but for completions their queue refuses.

        A completion refused by its queue (``QueueBroken``: the backend answers but will not
        work on that queue's data) raises nothing: its place in the answer is that error,
        naming the queue (whether it was applied is not known; a re-send is accepted, Q8).
        The other completions and the claim stand; the claim's leases are returned. Only a
        refusal of the claim itself raises ``QueueBroken``, naming the queue that refused it.

        The completions are applied before the claim, so a worker that dies holding the
        claimed jobs never re-runs the completed ones. On ``QueueUnavailable`` (or a
        ``QueueBroken`` raised) neither part is known to have happened; re-sending both
        (same lease tokens, same ``claim_token``) is safe (Q8).
        """
        ...

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        """Record ``error`` for this attempt and apply the retry policy's ``decision``.

        ``Retry(delay)`` makes the job ready again after ``delay`` (at the back of its
        priority), unless a cancel asked it to stop (then as ``Cancel``); ``Dead(reason)``
        moves it to the dead letters; ``Cancel(reason)`` ends it ``CANCELLED`` (kept as long as
        a completed record). Returns the job's new state (``DELAYED``, ``READY``, ``DEAD`` or
        ``CANCELLED``). Raises ``StaleLease`` as ``complete`` does.
        """
        ...

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """Give the job back unfinished (graceful shutdown): front of its priority, attempt
        not spent (Q7). With a ``delay`` the job is delayed that long first (a job the worker
        cannot run yet, e.g. its handler is not deployed). Raises ``StaleLease`` as
        ``complete`` does."""
        ...

    def reap(self) -> int:
        """Recover every expired lease (Q5): back to ready, or dead with ``"lease lost"`` after
        ``max_attempts`` starts. Returns how many leases were recovered.

        A queue the backend refuses to reap (``QueueBroken``) does not stop the others: they
        are reaped, then ``QueuesBroken`` is raised with one ``QueueBroken`` per refusing
        queue (``broken``) and the leases the others gave back (``done``)."""
        ...

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The job's current record, or ``None`` if no such job is known (completed records are
        kept for a limited time). ``queue`` narrows the search."""
        ...

    def wait(self, job_id: str, timeout: timedelta, queue: str | None = None) -> JobRecord | None:
        """The job's record once it is final (completed, dead or cancelled), waiting up to
        ``timeout`` (real time) for that; the record as it is then if the time runs out;
        ``None`` if no such job is known (``queue`` narrows the search, as for ``get``).

        Waiting does not poll: the transition that ends the job wakes every waiter of it at
        once. A ``timeout`` of zero or less answers at once. Raises ``QueueUnavailable``.
        """
        ...

    def stats(self, queue: str) -> QueueStats:
        """Sizes and running totals of one queue (zeros for a queue never used)."""
        ...

    def queues(self) -> list[str]:
        """Every queue that has ever held a job or been paused (so one paused ahead of its
        first job is shown paused), sorted by name. Raises ``QueueUnavailable`` if the list
        cannot be read; ``QueuesUnlisted`` (holding the queues found) where the backend could
        search its parts that answered instead (a Redis Cluster with a master down)."""
        ...

    def stats_many(self, queues: Sequence[str]) -> list[QueueStats]:
        """``stats`` of each of ``queues``, in order, in as few round trips as the backend
        allows (for pages and scrapes that show every queue). Each queue's figures are read
        together; different queues' may be a moment apart."""
        ...

    def oldest_ready_age(self, queues: Sequence[str]) -> list[timedelta | None]:
        """For each of ``queues``, in order, how long its longest-waiting ready job has waited,
        by the queue's clock, or ``None`` when it has no ready job (due delayed jobs are ready).

        A job waits from its enqueue, or from its run time if it was delayed, or from its last
        failure at the latest if it ran before (so a retried job may count up to its retry
        delay early). Only the jobs next in line at each priority are weighed, so the age
        grows while a queue is stuck or a priority starves, and falls as the queue drains.
        In as few round trips as the backend allows.
        """
        ...

    def jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 100
    ) -> list[JobRecord]:
        """Records of ``queue``'s jobs now in ``state``, at most ``limit`` from ``offset``.

        ``READY`` in the order claims take them (due delayed jobs included),
        ``DELAYED`` by run time, ``ACTIVE`` by lease deadline (``JobRecord.worker`` names the
        holder), ``COMPLETED``, ``DEAD`` and ``CANCELLED`` newest first. For
        inspection: read in a few round trips, so a job moving meanwhile may show twice or
        not at all.
        """
        ...

    def dead(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """Dead letters of ``queue``, newest first (Q10)."""
        ...

    def requeue_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or those named) back to ready with a fresh attempt budget.

        Returns how many were requeued; unknown ids are ignored.
        """
        ...

    def cancel(
        self, job_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState | None:
        """Stop a job that has not ended; the job's state after the call, ``None`` if no such
        job is known (``queue`` narrows the search, as for ``get``).

        A pending (ready, delayed or waiting) job becomes ``CANCELLED`` at once, with ``reason``: it
        never runs, frees its unique key, wakes its ``wait``-ers, and its record is kept as
        long as a completed one. A running job stays ``ACTIVE`` (the answer says so), asked to
        stop: ``renew`` returns its lease with ``stop`` set to the first cancel's reason, and
        it never runs again (a retry, a ``release`` or a lost lease end it ``CANCELLED``; a
        completion or a death stands). A job that ended (completed, dead, cancelled) is left
        as it is. A re-send changes nothing (Q8). Raises ``QueueUnavailable``.
        """
        ...

    def delete(self, queue: str, job_id: str) -> bool:
        """Remove a pending (ready, delayed or waiting) or dead job; the jobs waiting for it
        fail as if it went dead. Returns ``False`` if there is no such job, or it is
        running (a running job cannot be deleted; let it finish or fail)."""
        ...

    def delete_dead(self, queue: str, job_id: str) -> bool:
        """Remove ``job_id`` if it is a dead letter of ``queue`` now, checked and removed in
        one atomic step (what an operator who saw it dead means by "forget it").

        Returns ``False``, and changes nothing, if there is no such job or it is in any other
        state: a dead letter requeued meanwhile (by ``requeue_dead``, another operator) is
        pending again and stays (Q1). Raises ``QueueUnavailable``.
        """
        ...

    def delete_pending(self, queue: str, job_id: str) -> bool:
        """Remove ``job_id`` if it is pending (ready, delayed or waiting) in ``queue`` now,
        checked and removed in one atomic step (what an operator who saw it pending means by
        "delete it"); the jobs waiting for it fail as if it went dead.

        Returns ``False``, and changes nothing, if there is no such job or it is in any other
        state: a job that started, or ended, since is left as it is. Raises
        ``QueueUnavailable``.
        """
        ...

    def purge(self, queue: str) -> int:
        """Remove every pending (ready and delayed) job of ``queue``; returns how many."""
        ...

    def purge_dead(self, queue: str) -> int:
        """Remove every dead letter of ``queue``; returns how many."""
        ...

    def pause(self, queue: str) -> None:
        """Stop ``claim`` from taking jobs of ``queue`` (enqueue still works)."""
        ...

    def resume(self, queue: str) -> None:
        """Undo ``pause``."""
        ...


@runtime_checkable
class WorkerRegistry(Protocol):
    """Live workers, published through the queue backend so ``foundry stats`` can list them.

    * A worker that stops heartbeating disappears after ``ttl``.
    """

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """Publish (or refresh) ``info`` for ``ttl``."""
        ...

    def workers(self) -> list[WorkerInfo]:
        """Every worker whose last heartbeat has not expired, sorted by id."""
        ...

    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker at once (clean exit)."""
        ...
