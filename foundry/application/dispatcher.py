"""Dispatching jobs from application code: now, later, at a time, or many at once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from foundry.application.registry import JobRegistry
from foundry.domain import InvalidJob, Job, RunAfter, RunAt, RunNow, UniqueSpec
from foundry.domain.schedule import Schedule
from foundry.ports import Clock, Duplicate, EnqueueOutcome, QueuePort

log = logging.getLogger(__name__)

Target = str | Callable[..., Any]


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
        self._registry = registry
        self._clock = clock
        self._warning = first_dispatch_warning

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
        options = {"queue": queue, "priority": priority, "id": job_id, "unique": unique}
        job = self.build(target, payload, schedule=_schedule(delay, at), **options)
        job_id = _job_id(self._queue.enqueue(job))
        self._warn_once(job_id)
        return job_id

    def dispatch_many(self, items: Iterable[tuple[Target, Mapping[str, Any] | None]]) -> list[str]:
        """Enqueue many jobs in one ``enqueue_many`` call; ids in the same order.

        Every job of the call gets the same ``created_at`` (one reading of the clock).
        """
        named = [self._named(item) for item in items]
        made = self._registry.make_jobs(named, created_at=self._clock.now())
        jobs = [self._registry.hooks.dispatching(job) for job in made]
        ids = [_job_id(outcome) for outcome in self._queue.enqueue_many(jobs)]
        if ids:
            self._warn_once(ids[0])
        return ids

    def _warn_once(self, job_id: str) -> None:
        if self._warning is not None:
            log.warning(self._warning.format(job_id=job_id))
            self._warning = None

    def _named(self, item: object) -> tuple[str, Mapping[str, Any] | None]:
        if not isinstance(item, tuple) or len(item) != 2:
            raise InvalidJob(
                "items",
                f"dispatch_many takes (handler, payload) pairs, got {item!r:.80}; "
                "write dispatch_many([(send_welcome, {'user_id': 1}), ...])",
            )
        target, payload = item
        return self._registry.name_of(target), payload

    def build(
        self, target: Target, payload: Mapping[str, Any] | None = None, **options: Any
    ) -> Job:
        """The job ``dispatch`` would enqueue (options left ``None`` keep the defaults), with
        the metadata the registry's ``on_dispatch`` hooks add."""
        overrides = {key: value for key, value in options.items() if value is not None}
        overrides.setdefault("created_at", self._clock.now())
        job = self._registry.make_job(self._registry.name_of(target), payload, **overrides)
        return self._registry.hooks.dispatching(job)


def _schedule(delay: timedelta | None, at: datetime | None) -> Schedule:
    if delay is not None and at is not None:
        raise InvalidJob("schedule", "give delay= or at=, not both")
    try:
        if delay is not None:
            return RunAfter(delay)
        if at is not None:
            return RunAt(at)
    except (TypeError, ValueError) as error:
        raise InvalidJob(
            "schedule", f"{error}; pass a timedelta >= 0 or an aware datetime"
        ) from error
    return RunNow()


def _job_id(outcome: EnqueueOutcome) -> str:
    return outcome.existing_id if isinstance(outcome, Duplicate) else outcome.job_id
