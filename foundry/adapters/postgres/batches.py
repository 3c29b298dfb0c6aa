"""The PostgreSQL queue's batches (``BatchPort``): dispatch in one ``enqueue_batches`` call
(its jobs through enqueue's own body), cancel in one ``cancel_batch`` call, records read with
one query. ``0004_batches.sql`` says what each table holds; the counting and the callbacks
happen in ``settle``, which every function that ends a job calls, inside the same transaction
as the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from foundry.adapters.postgres.database import Database
from foundry.adapters.postgres.enqueuing import enqueue_params, refused
from foundry.adapters.postgres.rows import RowCodec
from foundry.adapters.postgres.statements import PASS_SLOT_ON, Statements
from foundry.adapters.postgres.text_columns import without_nul
from foundry.domain import InvalidJob, Job
from foundry.domain.batch import Batch, BatchProgress, Callback, one_queue
from foundry.ports.batches import BatchRecord
from foundry.ports.inspection import JobRecord

#: The SQLSTATE ``enqueue_batches`` raises for a batch id that is a stored job's id.
_BATCH_ID_TAKEN = "FD002"
#: How often a cancel aborted by a deadlock is sent.
DEADLOCK_TRIES = 5

_ENQUEUE = """
    SELECT {s}.enqueue_batches(
        %(batch_ids)s::text[], %(allow_failures)s::boolean[], %(count)s::integer,
        %(batch_of)s::integer[], %(which)s::text[],
        %(queues)s::text[], %(ids)s::text[], %(priorities)s::integer[],
        %(at)s::timestamptz[], %(delays)s::interval[], %(max_attempts)s::integer[],
        %(blobs)s::bytea[], %(unique_keys)s::text[], %(unique_ttls)s::interval[],
        %(unique_untils)s::text[], %(after_failures)s::text[], %(after_jobs)s::integer[],
        %(after_ids)s::text[], %(limit_keys)s::text[], %(limit_concurrency)s::integer[],
        %(limit_interval_ms)s::bigint[], %(keep)s::interval, %(max_dead)s::integer,
        %(dead_age)s::interval, %(now)s::timestamptz)
"""

# The ready members' keys are read first, for PASS_SLOT_ON.
_CANCEL = f"""
    WITH left_ready AS (
        SELECT j.queue, j.limit_key, j.limit_concurrency
          FROM {{s}}.batch_members m JOIN {{s}}.jobs j ON j.queue = m.queue AND j.id = m.job_id
         WHERE m.batch_id = %(id)s AND (%(queue)s::text IS NULL OR m.queue = %(queue)s)
           AND j.state = 'ready' AND j.limit_concurrency IS NOT NULL AND j.parked IS NOT NULL
    ), cancelled AS (
        SELECT {{s}}.cancel_batch(
            %(queue)s::text, %(id)s::text, %(reason)s::text, %(keep)s::interval,
            %(max_dead)s::integer, %(dead_age)s::interval, %(now)s::timestamptz) AS known
    ), {PASS_SLOT_ON}
    SELECT c.known, {{s}}.wake(ARRAY(SELECT queue FROM passed)) FROM cancelled c
"""

_COLUMNS = """
    b.queue, b.id, b.total, b.completed, b.failed, b.cancelled, b.allow_failures,
    b.cancel_requested, b.caught, b.created_at, b.finished_at, b.fired, b.reason,
    ARRAY(SELECT c.which || ' ' || c.id FROM {s}.batch_callbacks c
           WHERE c.queue = b.queue AND c.batch_id = b.id)
"""

_FORGET = """
    DELETE FROM {s}.batches b
     USING (SELECT queue, id FROM {s}.batches
             WHERE expires_at <= coalesce(%(now)s::timestamptz, clock_timestamp())
             LIMIT 1000 FOR UPDATE SKIP LOCKED) old
     WHERE b.queue = old.queue AND b.id = old.id
"""

_KEPT = "(b.expires_at IS NULL OR b.expires_at > %(now)s)"

_ONE = f"""
    SELECT {_COLUMNS} FROM {{s}}.batches b
     WHERE b.id = %(id)s AND (%(queue)s::text IS NULL OR b.queue = %(queue)s) AND {_KEPT}
     ORDER BY b.queue LIMIT 1
"""

_MEMBERS = f"""
    SELECT b.members FROM {{s}}.batches b
     WHERE b.queue = %(queue)s AND b.id = %(id)s AND {_KEPT}
"""

# The time is read in the statement (the injected clock's when given), so one round trip.
_JOB_RECORDS = """
    SELECT j.queue, j.id, j.state, j.priority, j.attempts, j.enqueued_at, j.run_at,
           j.lease_deadline, j.blob, j.errors, j.result, j.reason, j.finished_at, j.worker,
           j.progress, t.now
      FROM (SELECT coalesce(%(now)s::timestamptz, clock_timestamp()) AS now) t
      JOIN {s}.jobs j ON j.queue = %(queue)s AND j.id = ANY (%(ids)s::text[])
       AND (j.expires_at IS NULL OR j.expires_at > t.now)
"""

_LIST = f"""
    SELECT {_COLUMNS} FROM {{s}}.batches b
     WHERE b.queue = %(queue)s AND {_KEPT}
     ORDER BY b.seq DESC OFFSET %(offset)s LIMIT %(limit)s
"""


class BatchCalls:
    """The batch statements of one schema, their parameters and what their rows say, built
    without I/O: the sync ``PostgresBatches`` and the asyncio queue send the same calls."""

    def __init__(self, sql: Statements) -> None:
        self.enqueue = sql.render(_ENQUEUE)
        self.cancel = sql.render(_CANCEL)
        self.one = sql.render(_ONE)
        self.list = sql.render(_LIST)
        self.members = sql.render(_MEMBERS)
        self.job_records = sql.render(_JOB_RECORDS)
        self.forget = sql.render(_FORGET)

    @staticmethod
    def params(
        items: Sequence[Job | Batch], rows: RowCodec, now: datetime | None, policy: dict[str, Any]
    ) -> dict[str, Any]:
        """Enqueue's arrays over the jobs to store now (in order), then the callbacks; which
        batch each belongs to, and which callback each of the latter is. Everything is
        encoded (so checked) here; ``InvalidJob`` for items of several queues."""
        one_queue(items)
        jobs: list[Job] = []
        batch_of: list[int | None] = []
        callbacks: list[tuple[int, Callback, Job]] = []
        batches = [item for item in items if isinstance(item, Batch)]
        index = 0
        for item in items:
            if isinstance(item, Batch):
                index += 1
                jobs += item.jobs
                batch_of += [index] * len(item.jobs)
                callbacks += [(index, which, job) for which, job in item.callbacks.items()]
            else:
                jobs.append(item)
                batch_of.append(None)
        every = [*jobs, *(job for _, _, job in callbacks)]
        blobs = [rows.encode_job(job) for job in every]
        return {
            **enqueue_params(every, blobs, now, policy),
            "batch_ids": [batch.id for batch in batches],
            "allow_failures": [batch.allow_failures for batch in batches],
            "count": len(jobs),
            "batch_of": [*batch_of, *(index for index, _, _ in callbacks)],
            "which": [*(None for _ in jobs), *(which.value for _, which, _ in callbacks)],
        }


def job_records(
    job_ids: Sequence[str], rows: Sequence[tuple[Any, ...]], codec: RowCodec
) -> list[JobRecord | None]:
    """The records the ``job_records`` statement's ``rows`` hold, in the ids' order."""
    found = {row[1]: codec.record(row[:-1], row[-1]) for row in rows}
    return [found.get(job_id) for job_id in job_ids]


class PostgresBatches:
    """``BatchPort`` over the queue's schema."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._sql = BatchCalls(db.sql)

    def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """One ``enqueue_batches`` call; everything encoded (so checked) first."""
        with self._db.conn() as conn:
            self.enqueue_on(conn, items)

    def enqueue_on(
        self, executor: psycopg.Connection[Any] | psycopg.Cursor[Any], items: Sequence[Job | Batch]
    ) -> None:
        """The ``enqueue_batches`` call on ``executor`` (a pooled connection, or a cursor of
        the caller's own in a transaction it holds); ``InvalidJob`` for bad input."""
        if not items:
            return
        params = self._sql.params(items, self._db.rows, self._db.now(), self._db.policy)
        try:
            executor.execute(self._sql.enqueue, params)
        except psycopg.Error as error:
            invalid = batch_refused(error)
            if invalid is None:
                raise
            raise invalid from None

    def batch(self, batch_id: str, queue: str | None) -> BatchRecord | None:
        """The batch's record, searched in every queue when ``queue`` is None."""
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            params = {"id": batch_id, "queue": queue, "now": now}
            row = conn.execute(self._sql.one, params).fetchone()
        return None if row is None else batch_record(row)

    def cancel_batch(self, batch_id: str, queue: str | None, reason: str) -> BatchRecord | None:
        """One ``cancel_batch`` call, then the batch's record."""
        params = {"id": batch_id, "queue": queue, "reason": without_nul(reason), **self._db.policy}
        with self._db.conn() as conn:
            for attempt in range(1, DEADLOCK_TRIES + 1):
                try:
                    now = {"now": self._db.now()}
                    row = conn.execute(self._sql.cancel, {**params, **now}).fetchone()
                    break
                except psycopg.errors.DeadlockDetected:
                    # Members ending in one worker call in another order than the batch's:
                    # PostgreSQL aborted this call, which changed nothing; send it again.
                    if attempt == DEADLOCK_TRIES:
                        raise
        if row is None or row[0] is None:
            return None
        return self.batch(batch_id, row[0])

    def members(self, batch_id: str, queue: str) -> list[str] | None:
        """The batch's member ids (one query)."""
        with self._db.conn() as conn:
            params = {"id": batch_id, "queue": queue, "now": self._db.now_on(conn)}
            row = conn.execute(self._sql.members, params).fetchone()
        return None if row is None or row[0] is None else list(row[0])

    def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """The jobs' records (one query, the time read in it)."""
        if not job_ids:
            return []
        params = {"ids": list(job_ids), "queue": queue, "now": self._db.now()}
        with self._db.conn() as conn:
            rows = conn.execute(self._sql.job_records, params).fetchall()
        return job_records(job_ids, rows, self._db.rows)

    def batches(self, queue: str, offset: int, limit: int) -> list[BatchRecord]:
        """The queue's batches still kept, newest first."""
        if limit <= 0 or offset < 0:
            return []
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            params = {"queue": queue, "now": now, "offset": offset, "limit": limit}
            rows = conn.execute(self._sql.list, params).fetchall()
        return [batch_record(row) for row in rows]

    def forget_expired(self) -> int:
        """Delete the ended batches kept past their time (their callbacks' rows go with
        them), at most 1,000; how many. The reaper's."""
        with self._db.conn() as conn:
            return conn.execute(self._sql.forget, {"now": self._db.now()}).rowcount


def batch_refused(error: psycopg.Error) -> InvalidJob | None:
    """The ``InvalidJob`` an ``enqueue_batches`` error stands for, if it is one."""
    if error.sqlstate == _BATCH_ID_TAKEN:
        return InvalidJob("batch_id", error.diag.message_primary or str(error))
    return refused(error)


def batch_record(row: tuple[Any, ...]) -> BatchRecord:
    """The record a batch row (``_COLUMNS``) holds."""
    (queue, batch_id, total, completed, failed, cancelled, allow_failures, cancel_requested,
     caught, created_at, finished_at, fired, reason, callbacks) = row  # fmt: skip
    progress = BatchProgress(
        total=total,
        completed=completed,
        failed=failed,
        cancelled=cancelled,
        allow_failures=allow_failures,
        cancel_requested=cancel_requested,
        caught=caught,
    )
    named = dict(entry.split(" ", 1) for entry in callbacks)
    return BatchRecord(
        id=batch_id,
        queue=queue,
        progress=progress,
        created_at=created_at,
        finished_at=finished_at,
        callbacks={Callback(which): job_id for which, job_id in named.items()},
        fired=frozenset(Callback(which) for which in fired),
        reason=reason,
    )
