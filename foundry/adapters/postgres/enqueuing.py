"""Enqueue's parameters (one array per column, one element per job) and its answers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from foundry.adapters.postgres.statements import Statements
from foundry.adapters.postgres.text_columns import without_nul
from foundry.domain import InvalidJob, Job, RunAfter, RunAt
from foundry.ports import Duplicate, Enqueued, EnqueueOutcome


def enqueue_params(
    jobs: Sequence[Job], blobs: Sequence[bytes], now: datetime | None, policy: dict[str, Any]
) -> dict[str, Any]:
    """The ``enqueue`` function's arguments for ``jobs`` (encoded as ``blobs``).

    A job's run time is passed as its schedule says (a moment, or a delay the statement adds
    to its own now), so it is right whichever clock the queue uses.
    """
    return {
        "queues": [job.queue for job in jobs],
        "ids": [job.id for job in jobs],
        "priorities": [job.priority for job in jobs],
        "at": [job.schedule.at if isinstance(job.schedule, RunAt) else None for job in jobs],
        "delays": [
            job.schedule.delay if isinstance(job.schedule, RunAfter) else timedelta(0)
            for job in jobs
        ],
        "max_attempts": [job.max_attempts for job in jobs],
        "blobs": list(blobs),
        "unique_keys": [without_nul(job.unique.key) if job.unique else None for job in jobs],
        "unique_ttls": [job.unique.ttl if job.unique else None for job in jobs],
        "unique_untils": [job.unique.until.value if job.unique else None for job in jobs],
        "after_failures": [job.after_failure.value for job in jobs],
        "after_jobs": [k for k, job in enumerate(jobs, start=1) for _ in job.after],
        "after_ids": [dep for job in jobs for dep in job.after],
        "limit_keys": [without_nul(job.limit.key) if job.limit else None for job in jobs],
        "limit_concurrency": [job.limit.concurrency if job.limit else None for job in jobs],
        "limit_interval_ms": [
            job.limit.rate.interval_ms if job.limit and job.limit.rate else None for job in jobs
        ],
        **policy,
        "now": now,
    }


def enqueue_call(
    statements: Statements,
    jobs: Sequence[Job],
    blobs: Sequence[bytes],
    now: datetime | None,
    policy: dict[str, Any],
) -> tuple[bytes, dict[str, Any]]:
    """The statement that stores ``jobs`` (encoded as ``blobs``) and its arguments: both
    answer (i, existing) rows.

    One job with no unique key and no ``after`` ids (a plain dispatch) goes to
    ``enqueue_one``, in scalar arguments; any other call to ``enqueue``.
    """
    if len(jobs) == 1 and jobs[0].unique is None and not jobs[0].after:
        return statements["enqueue_one"], _one_params(jobs[0], blobs[0], now)
    return statements["enqueue"], enqueue_params(jobs, blobs, now, policy)


def _one_params(job: Job, blob: bytes, now: datetime | None) -> dict[str, Any]:
    schedule, limit = job.schedule, job.limit
    return {
        "queue": job.queue,
        "id": job.id,
        "priority": job.priority,
        "at": schedule.at if isinstance(schedule, RunAt) else None,
        "delay": schedule.delay if isinstance(schedule, RunAfter) else timedelta(0),
        "max_attempts": job.max_attempts,
        "blob": blob,
        "after_failure": job.after_failure.value,
        "limit_key": without_nul(limit.key) if limit else None,
        "limit_concurrency": limit.concurrency if limit else None,
        "limit_interval_ms": limit.rate.interval_ms if limit and limit.rate else None,
        "now": now,
    }


#: The SQLSTATE the ``enqueue`` function raises for an ``after`` id its queue does not hold.
UNKNOWN_DEPENDENCY = "FD001"
#: The SQLSTATE the enqueue functions raise for a job id that is a kept batch's.
BATCH_ID = "FD003"
#: The field each refusal names.
_REFUSED_FIELD = {UNKNOWN_DEPENDENCY: "after", BATCH_ID: "id"}


def refused(error: psycopg.Error) -> InvalidJob | None:
    """The ``InvalidJob`` an enqueue's database error stands for, if it is one."""
    field = _REFUSED_FIELD.get(error.sqlstate or "")
    if field is None:
        return None
    return InvalidJob(field, error.diag.message_primary or str(error))


def outcomes(jobs: Sequence[Job], rows: Sequence[tuple[int, str | None]]) -> list[EnqueueOutcome]:
    """One outcome per job, in order, from the function's (i, existing) rows."""
    existing = dict(rows)
    answers: list[EnqueueOutcome] = []
    for i, job in enumerate(jobs, start=1):
        holder = existing.get(i)
        answers.append(Enqueued(job.id) if holder is None else Duplicate(job.id, holder))
    return answers
