"""Dispatching jobs from application code: now, later, at a time, or many at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from foundry.application.dispatching import (
    DispatcherBase,
    batch_store,
    chained_jobs,
    found_batch,
    found_state,
    not_a_job,
    transaction_store,
)
from foundry.application.job_maker import Item, Target, job_id_of
from foundry.application.registry import JobRegistry
from foundry.application.results import wait_for_result
from foundry.domain import (
    AfterFailure,
    Job,
    JobNotFound,
    JobState,
    Rate,
    UniqueSpec,
)
from foundry.domain.job import given_id
from foundry.ports import (
    BatchPort,
    Clock,
    CommitHooks,
    Enqueued,
    QueuePort,
    TransactionalEnqueue,
)

if TYPE_CHECKING:  # the batch types load with the first batch, not with the dispatcher
    from foundry.application.batches import Step
    from foundry.domain import Batch
    from foundry.ports import BatchRecord


class Dispatcher(DispatcherBase):
    """Builds jobs from the registry's defaults and enqueues them through the ``QueuePort``.

    A framework depends on this and the port only. ``target`` is a registered handler name or
    function; an unregistered name raises ``UnknownHandler`` (a typo would otherwise wait in a
    queue no worker serves). Returned ids are the job's, or for a duplicate of a unique job the
    id of the job already pending.

    ``after_commit=True`` (or a registry made with ``after_commit=True``) builds and checks the
    job now and enqueues it once the current database transaction commits, through
    ``commit_hooks``; nothing is sent if it rolls back. The id returned is then the new job's
    (a duplicate of a unique job is found only when it is sent).

    ``batches`` (the queue, when its backend keeps batches) lets it dispatch batches.

    ``connection=`` (when the queue is PostgreSQL, ``transactions``: a psycopg ``Connection``,
    a SQLAlchemy ``Session`` or ``Connection``, or Django's ``connection``) writes the job in
    the caller's own open transaction on that connection instead: it exists once that
    transaction commits, and never if it rolls back.
    """

    def __init__(
        self,
        queue: QueuePort,
        registry: JobRegistry,
        clock: Clock,
        *,
        first_dispatch_warning: str | None = None,
        commit_hooks: CommitHooks | None = None,
        batches: BatchPort | None = None,
        transactions: TransactionalEnqueue | None = None,
    ) -> None:
        super().__init__(
            registry,
            clock,
            first_dispatch_warning=first_dispatch_warning,
            commit_hooks=commit_hooks,
        )
        self._queue = queue
        self._batches = batches
        self._transactions = transactions

    def dispatch(
        self,
        target: Target,
        payload: Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        delay: timedelta | float | None = None,
        at: datetime | None = None,
        priority: int | None = None,
        job_id: str | None = None,
        unique: UniqueSpec | None = None,
        after_commit: bool | None = None,
        after: Sequence[str] | None = None,
        after_failure: AfterFailure | str | None = None,
        rate_limit: str | Rate | None = None,
        concurrency: int | None = None,
        limit_key: str | None = None,
        connection: object | None = None,
    ) -> str:
        """Enqueue one job (after the commit, or in the caller's transaction on
        ``connection``, if so); its id (or the pending duplicate's).

        ``after``: ids of jobs of the same queue, dispatched before, that must complete
        before this one runs (it waits meanwhile); if one goes dead or is cancelled, this one
        goes dead with reason ``dependency failed`` (``after_failure="cancel"``: it is
        cancelled; ``"run"``: it runs anyway). An id the queue does not hold raises ``InvalidJob``.
        ``rate_limit``, ``concurrency`` and ``limit_key`` replace the handler's, for this job.
        """
        if (
            queue is None
            and delay is None
            and at is None
            and priority is None
            and job_id is None
            and unique is None
            and after is None
            and after_failure is None
            and rate_limit is None
            and concurrency is None
            and limit_key is None
        ):  # no option given: the common call, without one()'s thirteen keywords
            job = self._jobs.plain(target, payload)
        else:
            job = self._jobs.one(
                target,
                payload,
                delay=delay,
                at=at,
                queue=queue,
                priority=priority,
                job_id=job_id,
                unique=unique,
                after=after,
                after_failure=after_failure,
                rate_limit=rate_limit,
                concurrency=concurrency,
                limit_key=limit_key,
            )
        if connection is not None:
            return self._send_within(connection, [job], after_commit)[0]
        # AfterCommit.wanted() written out: a call per dispatch.
        if self._after_commit.default if after_commit is None else after_commit:
            self._after_commit.defer([job], lambda: self._send(job))
            return job.id
        return self._send(job)

    def dispatch_many(
        self,
        items: Iterable[Item],
        *,
        after_commit: bool | None = None,
        connection: object | None = None,
    ) -> list[str]:
        """Enqueue many jobs in one ``enqueue_many`` call (after the commit, or in the
        caller's transaction on ``connection``, if so); ids in the same order.

        Every job of the call gets the same ``created_at`` (one reading of the clock).
        """
        jobs = self._jobs.many(items)
        if connection is not None:
            return self._send_within(connection, jobs, after_commit) if jobs else []
        if jobs and self._after_commit.wanted(after_commit):
            self._after_commit.defer(jobs, lambda: self._send_many(jobs))
            return [job.id for job in jobs]
        return self._send_many(jobs)

    def chain(
        self,
        steps: Iterable[Item | Job | Batch],
        *,
        queue: str | None = None,
        result_as: str | None = None,
        chain_id: str | None = None,
        after_commit: bool | None = None,
        connection: object | None = None,
    ) -> list[str]:
        """Enqueue ``steps`` (``(handler, payload)`` pairs, jobs from ``build``, or batches
        from ``build_batch``) to run one after another, in one write (after the commit, or in
        the caller's transaction on ``connection``, if so, as ``dispatch``); their ids (a
        batch's id for a batch), in order.

        ``chain_id`` makes a retried call safe, as ``job_id`` does for ``dispatch``: step
        ``n``'s id (a batch step's too) is ``<chain_id>.<n>``, so the same call sent again
        while those records are kept stores nothing new and returns the same ids. Without it
        every call dispatches a new chain.

        Each step waits for the previous one to complete (a batch step: every member waits
        for it; the step after a batch waits for the batch's end and runs if ``then`` fired);
        if a step goes dead or is cancelled, the later ones are cancelled with reason
        ``dependency failed``. With ``result_as``, each step after the first gets the previous
        step's result as that keyword argument (its handler must accept it; not with batch
        steps). Every step runs in one queue: ``queue``, or the first handler's. An empty
        chain raises ``InvalidJob``.
        """
        units, jobs = self._chain(steps, queue, result_as, chain_id)
        if connection is not None:
            if jobs is not None:
                return self._send_within(connection, jobs, after_commit)
            self._within(after_commit).enqueue_batches_within(connection, units)
            return [unit.id for unit in units]
        if jobs is not None:
            if self._after_commit.wanted(after_commit):
                self._after_commit.defer(jobs, lambda: self._send_many(jobs))
                return [job.id for job in jobs]
            return self._send_many(jobs)
        port = batch_store(self._batches)
        if self._after_commit.wanted(after_commit):
            self._after_commit.defer(chained_jobs(units), lambda: port.enqueue_batches(units))
        else:
            port.enqueue_batches(units)
        return [unit.id for unit in units]

    def batch(
        self,
        jobs: Iterable[Step],
        *,
        then: Step | None = None,
        catch: Step | None = None,
        finally_: Step | None = None,
        allow_failures: bool = False,
        queue: str | None = None,
        batch_id: str | None = None,
        after_commit: bool | None = None,
        connection: object | None = None,
    ) -> str:
        """Enqueue ``jobs`` (``(handler, payload)`` pairs, or jobs from ``build``) as one
        batch, in one write (after the commit, or in the caller's transaction on
        ``connection``, if so, as ``dispatch``); the batch's id.

        When the batch ends, its callbacks (each a pair or a job, enqueued exactly once in
        the same step as the member end that fires it) run: ``catch`` at the first member
        that goes dead; at the last member's end ``then`` if every member completed (or, with
        ``allow_failures``, unless the batch was cancelled) and ``finally_`` always. Every job
        and callback runs in one queue: ``queue``, or the first job's. Progress:
        ``batch_record``. Raises ``InvalidJob`` (before anything is sent) for an empty batch,
        a member holding a unique key, a dependency the queue does not hold or a cycle among
        the members' ``after``; ``UnknownHandler`` for a handler not registered.
        """
        made = self.build_batch(
            jobs,
            then=then,
            catch=catch,
            finally_=finally_,
            allow_failures=allow_failures,
            queue=queue,
            batch_id=batch_id,
        )
        if connection is not None:
            self._within(after_commit).enqueue_batches_within(connection, [made])
            return made.id
        port = batch_store(self._batches)
        if self._after_commit.wanted(after_commit):
            self._after_commit.defer(list(made.jobs), lambda: port.enqueue_batches([made]))
        else:
            port.enqueue_batches([made])
        return made.id

    def batch_record(self, batch_id: str, *, queue: str | None = None) -> BatchRecord:
        """The batch's progress and callbacks; raises ``JobNotFound`` if no such batch is
        kept (an ended batch is kept as long as a completed job)."""
        return found_batch(
            batch_store(self._batches).batch(given_id(batch_id, "batch"), queue), batch_id, queue
        )

    def cancel_batch(
        self, batch_id: str, *, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord:
        """Cancel the batch: its pending members are cancelled, its running ones asked to
        stop, ``then`` never fires (``finally_`` does, at its end). Raises ``JobNotFound`` if
        no such batch is kept."""
        record = batch_store(self._batches).cancel_batch(given_id(batch_id, "batch"), queue, reason)
        return found_batch(record, batch_id, queue)

    def batch_results(
        self,
        batch_id: str,
        timeout: float | timedelta | None = None,
        *,
        queue: str | None = None,
        propagate: bool = True,
    ) -> list[Any]:
        """The results of the batch's jobs, in the batch's order (as given, each after the
        jobs of the batch it waits for), once every one of them ended: Celery's
        ``group(...).get()``. Waits up to ``timeout`` in all (seconds or a timedelta;
        ``None``: until they end), woken by each job's end, without polling; the callbacks
        are not waited for.

        A job that went dead or was cancelled raises its ``JobFailed`` / ``JobCancelled``
        (the first in order), or with ``propagate=False`` has that error in its place.
        Raises ``BatchTimeout`` (a ``ResultTimeout`` naming the jobs still pending) if they
        have not all ended in time, ``BatchNotFound`` if no such batch is kept.
        """
        from foundry.application.batch_results import wait_for_batch  # noqa: PLC0415

        return wait_for_batch(
            self._queue,
            batch_store(self._batches),
            given_id(batch_id, "batch"),
            timeout,
            queue,
            propagate=propagate,
        )

    def result(
        self,
        job_id: str,
        timeout: float | timedelta | None = None,
        *,
        queue: str | None = None,
    ) -> Any:
        """The job's stored result once it completed, waiting up to ``timeout`` (seconds or a
        timedelta; ``None``: until it ends) without polling.

        Raises ``JobFailed`` (its reason and error history) if the job went dead,
        ``JobCancelled`` if it was cancelled, ``ResultTimeout`` if it has not ended in time
        (it may still), ``JobNotFound`` if no such job is known (never enqueued, or its
        completed record has expired). ``queue`` spares the search of every queue. An outage
        met while waiting (a failover, a restart) is waited out within ``timeout`` (with
        ``None``, a minute at a time); ``QueueUnavailable`` if it outlasts it.
        """
        try:
            return wait_for_result(self._queue, given_id(job_id), timeout, queue)
        except JobNotFound as error:
            raise self._not_a_job(error, "batch_record") from None

    def cancel(
        self, job_id: str, *, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState:
        """Cancel a job (see ``QueuePort.cancel``); its state after the call: ``CANCELLED``,
        ``ACTIVE`` for a running job its worker was asked to stop, or the state of a job
        that already ended, left as it is.

        Raises ``JobNotFound`` if no such job is known.
        """
        try:
            return found_state(self._queue.cancel(job_id, queue, reason), job_id, queue)
        except JobNotFound as error:
            raise self._not_a_job(error, "cancel_batch") from None

    def _not_a_job(self, error: JobNotFound, instead: str) -> JobNotFound:
        batch = None if self._batches is None else self._batches.batch(error.job_id, error.queue)
        return not_a_job(error, batch, instead)

    def _send(self, job: Job) -> str:
        outcome = self._queue.enqueue(job)
        job_id = outcome.job_id if type(outcome) is Enqueued else job_id_of(outcome)
        if self._first.warning is not None:
            self._first.dispatched(job_id)
        return job_id

    def _send_within(
        self, connection: object, jobs: list[Job], after_commit: bool | None
    ) -> list[str]:
        outcomes = self._within(after_commit).enqueue_within(connection, jobs)
        return [job_id_of(outcome) for outcome in outcomes]

    def _within(self, after_commit: bool | None) -> TransactionalEnqueue:
        return transaction_store(self._transactions, after_commit)

    def _send_many(self, jobs: list[Job]) -> list[str]:
        ids = [job_id_of(outcome) for outcome in self._queue.enqueue_many(jobs)]
        if ids:
            self._first.dispatched(ids[0])
        return ids
