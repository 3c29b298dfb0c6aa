"""Dispatching jobs from asyncio code (FastAPI, Starlette, aiohttp) without blocking the loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from foundry.application.job_maker import (
    AfterCommit,
    FirstDispatchWarning,
    Item,
    JobMaker,
    Target,
    job_id_of,
)
from foundry.application.registry import JobRegistry
from foundry.application.results import wait_for_result_async
from foundry.domain import Job, Rate, UniqueSpec
from foundry.ports import AsyncQueuePort, Clock, CommitHooks

log = logging.getLogger(__name__)


class AsyncDispatcher:
    """``Dispatcher`` for event loops: the same methods, jobs, ids and errors, awaited.

    Jobs are built exactly as ``Dispatcher`` builds them (registry defaults, the call's
    options, the clock) and stored through the ``AsyncQueuePort``; concurrent dispatches from
    one loop share the Redis adapter's connection and writes.

    ``after_commit`` is ``Dispatcher``'s: at the commit (in the loop's thread or another, as
    Django's async views commit in a worker thread) the send is handed to the loop that
    dispatched; ``flush()`` waits for those sends (call it before closing the connection).
    """

    def __init__(
        self,
        queue: AsyncQueuePort,
        registry: JobRegistry,
        clock: Clock,
        *,
        first_dispatch_warning: str | None = None,
        commit_hooks: CommitHooks | None = None,
    ) -> None:
        self._queue = queue
        self._jobs = JobMaker(registry, clock)
        self._first = FirstDispatchWarning(first_dispatch_warning)
        self._after_commit = AfterCommit(commit_hooks, registry.after_commit)
        self._sending: set[asyncio.Task[list[str]]] = set()

    async def dispatch(
        self,
        target: Target,
        payload: Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        delay: timedelta | None = None,
        at: datetime | None = None,
        priority: int | None = None,
        job_id: str | None = None,
        unique: UniqueSpec | None = None,
        after_commit: bool | None = None,
        rate_limit: str | Rate | None = None,
        concurrency: int | None = None,
        limit_key: str | None = None,
    ) -> str:
        """Enqueue one job (after the commit, if so); its id (or the pending duplicate's).

        ``rate_limit``, ``concurrency`` and ``limit_key`` replace the handler's, for this job.
        """
        job = self._jobs.one(
            target,
            payload,
            delay=delay,
            at=at,
            queue=queue,
            priority=priority,
            job_id=job_id,
            unique=unique,
            rate_limit=rate_limit,
            concurrency=concurrency,
            limit_key=limit_key,
        )
        if self._after_commit.wanted(after_commit):
            self._defer([job])
            return job.id
        job_id = job_id_of(await self._queue.enqueue(job))
        self._first.dispatched(job_id)
        return job_id

    async def dispatch_many(
        self, items: Iterable[Item], *, after_commit: bool | None = None
    ) -> list[str]:
        """Enqueue many jobs in one ``enqueue_many`` call (after the commit, if so); ids in the
        same order.

        Every job of the call gets the same ``created_at`` (one reading of the clock).
        """
        jobs = self._jobs.many(items)
        if jobs and self._after_commit.wanted(after_commit):
            self._defer(jobs)
            return [job.id for job in jobs]
        return await self._send(jobs, many=True)

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
        return await wait_for_result_async(self._queue, job_id, timeout, queue)

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

    def _defer(self, jobs: list[Job]) -> None:
        loop = asyncio.get_running_loop()

        def committed() -> None:
            try:
                here = asyncio.get_running_loop()
            except RuntimeError:
                here = None
            if here is loop:
                self._spawn(jobs)
            else:
                loop.call_soon_threadsafe(self._spawn, jobs)

        self._after_commit.defer(jobs, committed)

    def _spawn(self, jobs: list[Job]) -> None:
        task = asyncio.get_running_loop().create_task(self._send(jobs, many=len(jobs) > 1))
        self._sending.add(task)
        task.add_done_callback(lambda done: self._sent(done, jobs))

    def _sent(self, task: asyncio.Task[list[str]], jobs: list[Job]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "jobs dispatched after commit were not sent, the commit stands: %s",
                ", ".join(job.id for job in jobs[:5]),
                exc_info=task.exception(),
            )

    def build(
        self, target: Target, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> Job:
        """The job ``dispatch`` would enqueue (options left ``None`` keep the defaults), with
        the metadata the registry's ``on_dispatch`` hooks add."""
        return self._jobs.build(target, payload, **options)
