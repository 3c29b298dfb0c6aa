"""Dispatching jobs from asyncio code (FastAPI, Starlette, aiohttp) without blocking the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from foundry.application.batches import Step
from foundry.application.dispatching import (
    DispatcherBase,
    batch_store,
    chained_jobs,
    found_batch,
    found_state,
    not_a_job,
    transaction_store,
)
from foundry.application.job_maker import Item, Target, job_id_of, log_unsent
from foundry.application.registry import JobRegistry
from foundry.application.results import wait_for_result_async
from foundry.domain import AfterFailure, Batch, Job, JobNotFound, JobState, Rate, UniqueSpec
from foundry.domain.job import given_id
from foundry.ports import (
    AsyncBatchPort,
    AsyncQueuePort,
    AsyncTransactionalEnqueue,
    BatchRecord,
    Clock,
    CommitHooks,
)


class AsyncDispatcher(DispatcherBase):
    """``Dispatcher`` for event loops: the same methods, jobs, ids and errors, awaited.

    Jobs are built exactly as ``Dispatcher`` builds them (registry defaults, the call's
    options, the clock) and stored through the ``AsyncQueuePort``; concurrent dispatches from
    one loop share the Redis adapter's connection and writes.

    ``batches`` (the async queue, when its backend keeps batches) lets it dispatch batches.

    ``after_commit`` is ``Dispatcher``'s: at the commit (in the loop's thread or another, as
    Django's async views commit in a worker thread) the send is handed to the loop that
    dispatched; ``flush()`` waits for those sends (call it before closing the connection).
    Outside a transaction the send is awaited by the call, which raises its error. A commit
    made once the dispatching loop has closed stands, and the jobs it would have sent are
    logged as not sent, each id, at ERROR.
    """

    def __init__(
        self,
        queue: AsyncQueuePort,
        registry: JobRegistry,
        clock: Clock,
        *,
        first_dispatch_warning: str | None = None,
        commit_hooks: CommitHooks | None = None,
        batches: AsyncBatchPort | None = None,
        transactions: AsyncTransactionalEnqueue | None = None,
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
        self._sending: set[asyncio.Task[object]] = set()

    async def dispatch(
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
        """``Dispatcher.dispatch``, awaited: one job (after the commit, or in the caller's
        transaction on ``connection``, if so); its id (or the pending duplicate's)."""
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
            return (await self._send_within(connection, [job], after_commit))[0]
        if self._after_commit.wanted(after_commit):
            await self._defer([job], lambda: self._send([job]))
            return job.id
        job_id = job_id_of(await self._queue.enqueue(job))
        self._first.dispatched(job_id)
        return job_id

    async def dispatch_many(
        self,
        items: Iterable[Item],
        *,
        after_commit: bool | None = None,
        connection: object | None = None,
    ) -> list[str]:
        """Enqueue many jobs in one ``enqueue_many`` call (after the commit, or in the caller's
        transaction on ``connection``, if so); ids in the same order.

        Every job of the call gets the same ``created_at`` (one reading of the clock).
        """
        jobs = self._jobs.many(items)
        if connection is not None:
            return await self._send_within(connection, jobs, after_commit) if jobs else []
        if jobs and self._after_commit.wanted(after_commit):
            await self._defer(jobs, lambda: self._send(jobs, many=True))
            return [job.id for job in jobs]
        return await self._send(jobs, many=True)

    async def chain(
        self,
        steps: Iterable[Item | Job | Batch],
        *,
        queue: str | None = None,
        result_as: str | None = None,
        chain_id: str | None = None,
        after_commit: bool | None = None,
        connection: object | None = None,
    ) -> list[str]:
        """``Dispatcher.chain``, awaited: the steps in one write (after the commit, or in the
        caller's transaction on ``connection``, if so); their ids, in order."""
        units, jobs = self._chain(steps, queue, result_as, chain_id)
        if connection is not None:
            if jobs is not None:
                return await self._send_within(connection, jobs, after_commit)
            await self._within(after_commit).enqueue_batches_within(connection, units)
            return [unit.id for unit in units]
        if jobs is not None:
            if self._after_commit.wanted(after_commit):
                await self._defer(jobs, lambda: self._send(jobs, many=True))
                return [job.id for job in jobs]
            return await self._send(jobs, many=True)
        port = batch_store(self._batches)
        if self._after_commit.wanted(after_commit):
            await self._defer(chained_jobs(units), lambda: port.enqueue_batches(units))
        else:
            await port.enqueue_batches(units)
        return [unit.id for unit in units]

    async def batch(
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
        """``Dispatcher.batch``, awaited: the batch in one write (after the commit, or in the
        caller's transaction on ``connection``, if so); its id."""
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
            await self._within(after_commit).enqueue_batches_within(connection, [made])
            return made.id
        port = batch_store(self._batches)
        if self._after_commit.wanted(after_commit):
            await self._defer(list(made.jobs), lambda: port.enqueue_batches([made]))
        else:
            await port.enqueue_batches([made])
        return made.id

    async def batch_record(self, batch_id: str, *, queue: str | None = None) -> BatchRecord:
        """``Dispatcher.batch_record``, awaited (``BatchNotFound`` if no such batch is kept)."""
        record = await batch_store(self._batches).batch(given_id(batch_id, "batch"), queue)
        return found_batch(record, batch_id, queue)

    async def cancel_batch(
        self, batch_id: str, *, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord:
        """``Dispatcher.cancel_batch``, awaited: its record after the call."""
        record = await batch_store(self._batches).cancel_batch(
            given_id(batch_id, "batch"), queue, reason
        )
        return found_batch(record, batch_id, queue)

    async def batch_results(
        self,
        batch_id: str,
        timeout: float | timedelta | None = None,
        *,
        queue: str | None = None,
        propagate: bool = True,
    ) -> list[Any]:
        """``Dispatcher.batch_results``, awaited: the results of the batch's jobs in its
        order once every one ended, without polling and without blocking the loop."""
        from foundry.application.batch_results import wait_for_batch_async  # noqa: PLC0415

        return await wait_for_batch_async(
            self._queue,
            batch_store(self._batches),
            given_id(batch_id, "batch"),
            timeout,
            queue,
            propagate=propagate,
        )

    async def result(
        self,
        job_id: str,
        timeout: float | timedelta | None = None,
        *,
        queue: str | None = None,
    ) -> Any:
        """``Dispatcher.result``, awaited: the job's result once it completed, waiting up to
        ``timeout`` without polling and without blocking the loop.

        Raises ``JobFailed``, ``JobCancelled``, ``ResultTimeout`` or ``JobNotFound`` as
        ``Dispatcher.result`` does.
        """
        try:
            return await wait_for_result_async(self._queue, given_id(job_id), timeout, queue)
        except JobNotFound as error:
            raise await self._not_a_job(error, "batch_record") from None

    async def cancel(
        self, job_id: str, *, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState:
        """``Dispatcher.cancel``, awaited: the job's state after the call (``JobNotFound``
        if no such job is known)."""
        try:
            state = await self._queue.cancel(given_id(job_id), queue, reason)
            return found_state(state, job_id, queue)
        except JobNotFound as error:
            raise await self._not_a_job(error, "cancel_batch") from None

    async def _not_a_job(self, error: JobNotFound, instead: str) -> JobNotFound:
        batches = self._batches
        batch = None if batches is None else await batches.batch(error.job_id, error.queue)
        return not_a_job(error, batch, instead)

    async def flush(self) -> None:
        """Wait until every job handed over at a commit so far has been sent (or failed)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _send(self, jobs: list[Job], *, many: bool = False) -> list[str]:
        if many:
            ids = [job_id_of(outcome) for outcome in await self._queue.enqueue_many(jobs)]
        else:
            ids = [job_id_of(await self._queue.enqueue(jobs[0]))]
        if ids:
            self._first.dispatched(ids[0])
        return ids

    async def _send_within(
        self, connection: object, jobs: list[Job], after_commit: bool | None
    ) -> list[str]:
        outcomes = await self._within(after_commit).enqueue_within(connection, jobs)
        return [job_id_of(outcome) for outcome in outcomes]

    def _within(self, after_commit: bool | None) -> AsyncTransactionalEnqueue:
        return transaction_store(self._transactions, after_commit)

    async def _defer(self, jobs: list[Job], send: Callable[[], Awaitable[object]]) -> None:
        """``send`` once the transaction commits; outside a transaction (the hooks call back
        at once) awaited now, so the caller sees the jobs stored, or the error, as
        ``Dispatcher``'s caller does."""
        later = self._handed_to_loop(jobs, send)
        caller, deferring, at_once = threading.get_ident(), [True], [False]

        def committed() -> None:
            if deferring[0] and threading.get_ident() == caller:
                at_once[0] = True
            else:
                later()

        try:
            self._after_commit.defer(jobs, committed)
        finally:
            deferring[0] = False
        if at_once[0]:
            await send()

    def _handed_to_loop(
        self, jobs: list[Job], send: Callable[[], Awaitable[object]]
    ) -> Callable[[], None]:
        """What a commit calls: ``send`` spawned on this loop, from its thread or another."""
        loop = asyncio.get_running_loop()

        def committed() -> None:
            try:
                here = asyncio.get_running_loop()
            except RuntimeError:
                here = None
            if here is loop:
                self._spawn(jobs, send)
                return
            try:
                loop.call_soon_threadsafe(self._spawn, jobs, send)
            except RuntimeError:
                if not loop.is_closed():
                    raise
                _log_loop_closed(jobs)

        return committed

    def _spawn(self, jobs: list[Job], send: Callable[[], Awaitable[object]]) -> None:
        task = asyncio.get_running_loop().create_task(_awaited(send))
        self._sending.add(task)
        task.add_done_callback(lambda done: self._sent(done, jobs))

    def _sent(self, task: asyncio.Task[object], jobs: list[Job]) -> None:
        self._sending.discard(task)
        if task.cancelled():
            why = "their send was cancelled (the event loop ended first: await "
            log_unsent(jobs, why + "dispatcher.flush() before it ends)")
        elif task.exception() is not None:
            log_unsent(jobs, error=task.exception())


def _log_loop_closed(jobs: list[Job]) -> None:
    """The commit came after the dispatching loop closed: the jobs cannot be sent (the async
    queue's clients belong to that loop), so every id is logged and the commit stands."""
    log_unsent(
        jobs,
        "the event loop that dispatched them is closed (commit the transaction before the "
        "loop ends, or dispatch with the sync Dispatcher where the commit is made outside the "
        "loop)",
    )


async def _awaited(send: Callable[[], Awaitable[object]]) -> object:
    return await send()
