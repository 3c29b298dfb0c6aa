"""AsyncPostgresQueue: the asyncio producer's ports on PostgreSQL (psycopg's AsyncConnection).

It calls the same functions with the same arguments as ``PostgresQueue`` (built by
``enqueue_call`` and ``BatchCalls``), so a job or batch has the same id, record and promises
whichever client stored it. Calls share one connection, one at a time; every ``wait`` of the
loop listens on a second one for the ``ended`` notifications (``AsyncWaker``), looking again
after ``poll`` at the latest.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from foundry.adapters.codec import Codec
from foundry.adapters.postgres.async_waking import AsyncWaker, finish
from foundry.adapters.postgres.batches import (
    DEADLOCK_TRIES,
    BatchCalls,
    batch_record,
    batch_refused,
    job_records,
)
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import UTC_TIMES, aborted, unreachable, unusable
from foundry.adapters.postgres.database import end_policy
from foundry.adapters.postgres.enqueuing import enqueue_call, outcomes, refused
from foundry.adapters.postgres.lent import in_foundrys_database, psycopg_async_connection
from foundry.adapters.postgres.rows import RowCodec
from foundry.adapters.postgres.statements import Statements
from foundry.adapters.postgres.text_columns import without_nul
from foundry.adapters.postgres.waking import channel
from foundry.domain import Batch, InvalidJob, Job, JobState
from foundry.domain.given import given_ids, given_queue
from foundry.ports import BatchRecord, Clock, DeadLetterRetention, EnqueueOutcome, JobRecord

_SPARE = timedelta(minutes=1)
#: What a job that ends at its enqueue (its dependency already failed) or at a cancel is kept
#: under: the sync queue's defaults.
_KEEP = timedelta(hours=1)
_RETENTION = DeadLetterRetention()


class AsyncPostgresQueue:
    """Jobs into PostgreSQL from an event loop; ``clock=None`` uses the server's time."""

    def __init__(
        self,
        settings: PostgresSettings,
        *,
        clock: Clock | None = None,
        codec: Codec | None = None,
        poll: timedelta = timedelta(seconds=1),
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._rows = RowCodec(codec or Codec())
        self._sql = Statements(settings.schema)
        self._batches = BatchCalls(self._sql)
        self._waker = AsyncWaker(self._listen, poll.total_seconds())
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def enqueue(self, job: Job) -> EnqueueOutcome:
        """As ``PostgresQueue.enqueue``."""
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """As ``PostgresQueue.enqueue_many``: one statement, every job encoded first."""
        if not jobs:
            return []
        blobs = [self._rows.encode_job(job) for job in jobs]
        statement, params = enqueue_call(
            self._sql, jobs, blobs, self._now(), end_policy(_KEEP, _RETENTION)
        )
        rows = await self._fetch(statement, params)
        return outcomes(jobs, [(row[0], row[1]) for row in rows])

    async def enqueue_within(self, connection: object, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Store ``jobs`` with the caller's psycopg ``AsyncConnection``, in its open transaction
        (see ``AsyncTransactionalEnqueue``): the same ``enqueue`` call, whose NOTIFY wakes
        blocked workers when that transaction commits."""
        lent = await psycopg_async_connection(connection)
        if not jobs:
            return []
        blobs = [self._rows.codec.encode_job(job) for job in jobs]
        statement, params = enqueue_call(
            self._sql, jobs, blobs, self._now(), end_policy(_KEEP, _RETENTION)
        )
        # The caller's connection may have any row and cursor factory; ours reads tuples.
        with in_foundrys_database(lent, self._settings):
            try:
                async with psycopg.AsyncCursor(lent, row_factory=tuple_row) as cursor:
                    await cursor.execute(statement, params)
                    rows = await cursor.fetchall()
            except psycopg.Error as error:
                self._raise_translated(error, refused(error))
        return outcomes(jobs, rows)

    async def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """As ``PostgresQueue.get``."""
        now = await self._read_now()
        rows = await self._fetch(self._sql["record"], {"id": job_id, "queue": queue, "now": now})
        return self._rows.record(rows[0], now) if rows else None

    async def wait(
        self, job_id: str, timeout: timedelta, queue: str | None = None
    ) -> JobRecord | None:
        """As ``PostgresQueue.wait``, without blocking the loop."""
        give_up = time.monotonic() + timeout.total_seconds()
        record = await self.get(job_id, queue)
        if record is None or record.state.is_final or timeout <= timedelta(0):
            return record
        token = uuid.uuid4().hex
        waiter = {"token": token, "queue": record.job.queue, "id": job_id, "for": timeout + _SPARE}
        await self._fetch(self._sql["add_waiter"], waiter, rows=False)
        try:
            while True:
                since = await self._waker.mark()
                record = await self.get(job_id, queue)
                remaining = give_up - time.monotonic()
                if record is None or record.state.is_final or remaining <= 0:
                    return record
                await self._waker.wait(since, remaining)
        finally:
            await self._fetch(self._sql["drop_waiter"], {"token": token}, rows=False)

    async def cancel(
        self, job_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState | None:
        """As ``PostgresQueue.cancel``: one statement."""
        params = {"queue": queue, "id": job_id, "reason": without_nul(reason), "now": self._now()}
        rows = await self._fetch(self._sql["cancel"], {**params, **end_policy(_KEEP, _RETENTION)})
        return None if not rows or rows[0][0] is None else JobState(rows[0][0])

    async def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """As ``PostgresQueue.enqueue_batches``: one call, everything encoded first."""
        if not items:
            return
        policy = end_policy(_KEEP, _RETENTION)
        params = self._batches.params(items, self._rows, self._now(), policy)
        await self._fetch(self._batches.enqueue, params, rows=False)

    async def enqueue_batches_within(
        self, connection: object, items: Sequence[Job | Batch]
    ) -> None:
        """Store ``items`` with the caller's psycopg ``AsyncConnection``, in its open
        transaction (see ``AsyncTransactionalEnqueue``): the same ``enqueue_batches`` call."""
        lent = await psycopg_async_connection(connection)
        if not items:
            return
        params = self._batches.params(items, self._rows, self._now(), end_policy(_KEEP, _RETENTION))
        with in_foundrys_database(lent, self._settings):
            try:
                async with psycopg.AsyncCursor(lent, row_factory=tuple_row) as cursor:
                    await cursor.execute(self._batches.enqueue, params)
            except psycopg.Error as error:
                self._raise_translated(error, batch_refused(error))

    async def batch(self, batch_id: str, queue: str | None = None) -> BatchRecord | None:
        """As ``PostgresQueue.batch``: one query."""
        params = {"id": batch_id, "queue": queue, "now": await self._read_now()}
        rows = await self._fetch(self._batches.one, params)
        return batch_record(rows[0]) if rows else None

    async def members(self, batch_id: str, queue: str) -> list[str] | None:
        """As ``PostgresQueue.members``: one query."""
        params = {"id": batch_id, "queue": queue, "now": await self._read_now()}
        rows = await self._fetch(self._batches.members, params)
        return list(rows[0][0]) if rows and rows[0][0] is not None else None

    async def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """As ``PostgresQueue.job_records``: one query."""
        ids = given_ids(job_ids) or []
        if not ids:
            return []
        params = {"ids": ids, "queue": given_queue(queue), "now": self._now()}
        return job_records(ids, await self._fetch(self._batches.job_records, params), self._rows)

    async def cancel_batch(
        self, batch_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord | None:
        """As ``PostgresQueue.cancel_batch``: one call (sent again if PostgreSQL aborted it
        for a deadlock with a worker ending members), then the record."""
        params = {"id": batch_id, "queue": queue, "reason": without_nul(reason), "now": self._now()}
        for attempt in range(1, DEADLOCK_TRIES + 1):
            try:
                call = {**params, **end_policy(_KEEP, _RETENTION)}
                rows = await self._fetch(self._batches.cancel, call)
                break
            except psycopg.errors.DeadlockDetected:
                if attempt == DEADLOCK_TRIES:
                    raise
        if not rows or rows[0][0] is None:
            return None
        return await self.batch(batch_id, rows[0][0])

    async def aclose(self) -> None:
        """Close the connections (the next call opens them again)."""
        await self._waker.close()
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _now(self) -> datetime | None:
        return None if self._clock is None else self._clock.now()

    async def _read_now(self) -> datetime:
        if self._clock is not None:
            return self._clock.now()
        rows = await self._fetch(self._sql["now"], {"now": None})
        moment: datetime = rows[0][0]
        return moment

    async def _fetch(
        self, statement: bytes, params: dict[str, Any], *, rows: bool = True
    ) -> list[tuple[Any, ...]]:
        async with self._this_loops_lock():
            try:
                conn = await self._connection()
                cursor = await conn.execute(statement, params)
                return await cursor.fetchall() if rows else []
            except psycopg.Error as error:
                # Bad input (an ``after`` id the queue does not hold, a batch id that is a
                # job's, a job id that is a batch's: the server's FD001 / FD002 / FD003,
                # which psycopg files under OperationalError) or a deadlock to retry: the
                # connection is fine.
                invalid = batch_refused(error)
                if invalid is not None:
                    raise invalid from None
                if isinstance(error, psycopg.errors.DeadlockDetected):
                    raise
                missing = unusable(self._settings, error)
                if missing is not None:
                    raise missing from error
                if not isinstance(error, psycopg.OperationalError):
                    raise
                await self.aclose()
                raise unreachable(self._settings, error) from error

    def _this_loops_lock(self) -> asyncio.Lock:
        """The lock of the running loop's calls. A connection serves the loop that opened
        it: another loop (a second ``asyncio.run``, a test's own) opens its own, and the
        previous loop's is closed."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            finish(self._conn)
            self._lock, self._loop, self._conn = asyncio.Lock(), loop, None
        return self._lock

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await self._open()
        return self._conn

    async def _listen(self) -> psycopg.AsyncConnection[Any]:
        try:
            conn = await self._open()
        except psycopg.OperationalError as error:
            raise unreachable(self._settings, error) from error
        name = sql.Identifier(channel(self._settings.schema, "_ended"))
        await conn.execute(sql.SQL("LISTEN {}").format(name))
        return conn

    def _raise_translated(self, error: psycopg.Error, invalid: InvalidJob | None) -> NoReturn:
        """Raise what an enqueue in the caller's transaction failed with: the refusal
        ``error`` means, ``QueueUnavailable`` if the server was not reached, else ``error``
        (a statement the server ``aborted`` too: the caller's transaction is to retry)."""
        if invalid is not None:
            raise invalid from None
        if isinstance(error, psycopg.OperationalError) and not aborted(error):
            raise unreachable(self._settings, error) from error
        missing = unusable(self._settings, error)
        if missing is not None:
            raise missing from error
        raise error

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self._settings.url,
            autocommit=True,
            connect_timeout=max(1, round(self._settings.connect_timeout.total_seconds())),
            application_name=self._settings.application_name,
            context=UTC_TIMES,
            prepare_threshold=self._settings.prepare_threshold,
        )
