"""Dispatching jobs from application code: now, later, at a time, or many at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from foundry.application.job_maker import (
    FirstDispatchWarning,
    Item,
    JobMaker,
    Target,
    job_id_of,
)
from foundry.application.registry import JobRegistry
from foundry.domain import Job, UniqueSpec
from foundry.ports import Clock, QueuePort


class Dispatcher:
    """Builds jobs from the registry's defaults and enqueues them through the ``QueuePort``.

    A framework depends on this and the port only. ``target`` is a registered handler name or
    function; an unregistered name raises ``UnknownHandler`` (a typo would otherwise wait in a
    queue no worker serves). Returned ids are the job's, or for a duplicate of a unique job the
    id of the job already pending.
    """

    def __init__(
        self,
        queue: QueuePort,
        registry: JobRegistry,
        clock: Clock,
        *,
        first_dispatch_warning: str | None = None,
    ) -> None:
        self._queue = queue
        self._jobs = JobMaker(registry, clock)
        self._first = FirstDispatchWarning(first_dispatch_warning)

    def dispatch(
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
    ) -> str:
        """Enqueue one job; returns its id (or the pending duplicate's id)."""
        job = self._jobs.one(
            target,
            payload,
            delay=delay,
            at=at,
            queue=queue,
            priority=priority,
            job_id=job_id,
            unique=unique,
        )
        dispatched = job_id_of(self._queue.enqueue(job))
        self._first.dispatched(dispatched)
        return dispatched

    def dispatch_many(self, items: Iterable[Item]) -> list[str]:
        """Enqueue many jobs in one ``enqueue_many`` call; ids in the same order.

        Every job of the call gets the same ``created_at`` (one reading of the clock).
        """
        jobs = self._jobs.many(items)
        ids = [job_id_of(outcome) for outcome in self._queue.enqueue_many(jobs)]
        if ids:
            self._first.dispatched(ids[0])
        return ids

    def build(
        self, target: Target, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> Job:
        """The job ``dispatch`` would enqueue (options left ``None`` keep the defaults), with
        the metadata the registry's ``on_dispatch`` hooks add."""
        return self._jobs.build(target, payload, **options)
