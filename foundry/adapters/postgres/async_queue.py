"""AsyncPostgresQueue: the asyncio producer's port on PostgreSQL (psycopg's AsyncConnection).

It calls the same ``enqueue`` function with the same arguments as ``PostgresQueue`` (built by
``enqueue_params``), so a job has the same id, record and promises whichever client stored
it. Calls share one connection, one at a time; ``wait`` listens on a second one for the
``ended`` notifications, looking again after ``poll`` at the latest.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from foundry.adapters.codec import Codec
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import unreachable
from foundry.adapters.postgres.database import end_policy
from foundry.adapters.postgres.enqueuing import enqueue_params, outcomes, refused
from foundry.adapters.postgres.rows import RowCodec
from foundry.adapters.postgres.statements import Statements
from foundry.adapters.postgres.waking import channel
from foundry.domain import Job
from foundry.ports import Clock, DeadLetterRetention, EnqueueOutcome, JobRecord

_SPARE = timedelta(minutes=1)
#: What a job that fails at its enqueue (its dependency already failed) is kept under: the
#: sync queue's defaults.
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
        self._poll = poll.total_seconds()
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock: asyncio.Lock | None = None

    async def enqueue(self, job: Job) -> EnqueueOutcome:
        """As ``PostgresQueue.enqueue``."""
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """As ``PostgresQueue.enqueue_many``: one statement, every job encoded first."""
        if not jobs:
            return []
        blobs = [self._rows.codec.encode_job(job) for job in jobs]
        params = enqueue_params(jobs, blobs, self._now(), end_policy(_KEEP, _RETENTION))
        try:
            rows = await self._fetch(self._sql["enqueue"], params)
        except psycopg.Error as error:
            invalid = refused(error)
            if invalid is None:
                raise
            raise invalid from None
        return outcomes(jobs, [(row[0], row[1]) for row in rows])

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
        listener = await self._listen()
        try:
            await self._fetch(self._sql["add_waiter"], waiter, rows=False)
            while True:
                record = await self.get(job_id, queue)
                remaining = give_up - time.monotonic()
                if record is None or record.state.is_final or remaining <= 0:
                    return record
                async for _ in listener.notifies(timeout=min(remaining, self._poll), stop_after=1):
                    break
        finally:
            await listener.close()
            await self._fetch(self._sql["drop_waiter"], {"token": token}, rows=False)

    async def aclose(self) -> None:
        """Close the connection (the next call opens it again)."""
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
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                conn = await self._connection()
                cursor = await conn.execute(statement, params)
                return await cursor.fetchall() if rows else []
            except psycopg.OperationalError as error:
                await self.aclose()
                raise unreachable(self._settings, error) from error

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

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self._settings.url,
            autocommit=True,
            connect_timeout=max(1, round(self._settings.connect_timeout.total_seconds())),
            application_name=self._settings.application_name,
        )
