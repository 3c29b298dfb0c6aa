"""PostgresQueue: the QueuePort, WorkerRegistry, SchedulePort and BatchPort on PostgreSQL.

Each transition is one call of a PL/pgSQL function of the schema (0001_queue.sql): one round
trip, atomic, idempotent under re-send, as the Redis queue's scripts are. Claims take the
next ready jobs with ``FOR UPDATE SKIP LOCKED`` on a partial index ordered (priority, seq),
so concurrent workers never wait on each other's rows; an idle claim blocks on LISTEN (see
``waking``). Time is the injected clock's when one is given (tests), else the server's
``clock_timestamp()``: one clock for every worker, as Redis ``TIME`` is.

Costs: enqueue, claim, complete O(log n) per job; ``stats`` counts the queue's rows (O(n)).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from foundry.adapters.codec import Codec
from foundry.adapters.postgres.admin import PostgresAdmin
from foundry.adapters.postgres.batches import PostgresBatches
from foundry.adapters.postgres.config import PostgresSettings
from foundry.adapters.postgres.connection import own, refusals
from foundry.adapters.postgres.database import Database
from foundry.adapters.postgres.enqueuing import enqueue_call, outcomes, refused
from foundry.adapters.postgres.lent import in_foundrys_database, psycopg_connection
from foundry.adapters.postgres.rows import RowCodec
from foundry.adapters.postgres.schedules import PostgresSchedules
from foundry.adapters.postgres.waking import Waker, channel
from foundry.adapters.postgres.workers import PostgresWorkers
from foundry.adapters.postgres.writes import PostgresWrites
from foundry.domain import (
    Batch,
    ConfigurationError,
    Dead,
    Decision,
    ErrorInfo,
    Job,
    JobState,
    QueueBroken,
    UndecodableJob,
)
from foundry.domain.given import (
    given_ids,
    given_name,
    given_optional_queue,
    given_queue,
    given_queues,
    given_state,
)
from foundry.domain.job import given_id
from foundry.ports import (
    BatchRecord,
    ClaimRequest,
    Clock,
    DeadLetter,
    DeadLetterRetention,
    EnqueueOutcome,
    JobRecord,
    Lease,
    QueueStats,
    WorkerInfo,
)
from foundry.ports.schedule_types import Fired, Firing, Poll, ScheduleEntry, ScheduleListing

log = logging.getLogger("foundry.postgres")


class PostgresQueue:
    """Every queue promise (Q1-Q11) in one PostgreSQL schema."""

    def __init__(
        self,
        pool: ConnectionPool,
        settings: PostgresSettings,
        *,
        clock: Clock | None = None,
        codec: Codec | None = None,
        retention: DeadLetterRetention | None = None,
        completed_ttl: timedelta = timedelta(hours=1),
        poll: timedelta = timedelta(seconds=1),
    ) -> None:
        if completed_ttl <= timedelta(0):
            raise ConfigurationError(f"completed_ttl must be positive, got {completed_ttl}")
        rows = RowCodec(codec or Codec())
        db = Database(pool, settings, rows, clock, retention=retention, keep=completed_ttl)
        self._db = db
        self._sql = db.sql
        self._rows = db.rows
        self._writes = PostgresWrites(db, retention or DeadLetterRetention(), completed_ttl)
        self._waker = Waker(settings, channel(settings.schema), poll)
        self._ended = Waker(settings, channel(settings.schema, "_ended"), poll)
        self._admin = PostgresAdmin(db, completed_ttl, self._ended)
        self._workers = PostgresWorkers(db)
        self._schedules = PostgresSchedules(db)
        self._batches = PostgresBatches(db)

    @property
    def schema(self) -> str:
        """The schema this queue's tables are in."""
        return self._db.settings.schema

    def close(self) -> None:
        """Close the pool and the wake-up connection."""
        self._waker.close()
        self._ended.close()
        own(self._db.pool).close()  # in a forked child, its own: never its parent's

    # -- jobs in --------------------------------------------------------------------------------

    def enqueue(self, job: Job) -> EnqueueOutcome:
        """Store ``job`` (see ``QueuePort.enqueue``)."""
        return self.enqueue_many([job])[0]

    def enqueue_many(self, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Every job in one call (``enqueue_call``); encoded (and so validated) before it."""
        if not jobs:
            return []
        statement, params = self._enqueue_call(jobs)
        with self._conn() as conn:
            rows = _enqueued(conn, statement, params)
        return outcomes(jobs, rows)

    def enqueue_within(self, connection: object, jobs: Sequence[Job]) -> list[EnqueueOutcome]:
        """Store ``jobs`` with the caller's ``connection`` (psycopg, SQLAlchemy or Django:
        ``lent.py``), in its open transaction (see ``TransactionalEnqueue``): the same
        call as ``enqueue_many``, whose NOTIFY wakes blocked workers when that transaction
        commits."""
        lent = psycopg_connection(connection)
        if not jobs:
            return []
        statement, params = self._enqueue_call(jobs)
        # The caller's connection may have any row and cursor factory; ours reads tuples,
        # with the server binding the statement's named parameters.
        with (
            in_foundrys_database(lent, self._db.settings),
            refusals(self._db.settings, callers=True),
            psycopg.Cursor(lent, row_factory=tuple_row) as cur,
        ):
            rows = _enqueued(cur, statement, params)
        return outcomes(jobs, rows)

    def _enqueue_call(self, jobs: Sequence[Job]) -> tuple[bytes, dict[str, Any]]:
        blobs = [self._rows.encode_job(job) for job in jobs]
        return enqueue_call(self._sql, jobs, blobs, self._now(), self._db.policy)

    # -- jobs out -------------------------------------------------------------------------------

    @property
    def claims_from_forks(self) -> bool:
        """No: each child claiming would hold sessions of its own (the pool's children keep
        to the parent's, which claims for them)."""
        return False

    def claim(self, request: ClaimRequest) -> list[Lease]:
        """Lease up to ``request.limit`` jobs (see ``QueuePort.claim``); an empty claim waits
        on LISTEN for at most ``request.wait`` (real time).

        Only the last round of a call remembers an empty answer under the claim token: the
        round a NOTIFY wakes must look again, not replay the first round's nothing.
        """
        if request.wait <= timedelta(0):
            return self._leases(self._claim(request, remember=True))
        give_up = time.monotonic() + request.wait.total_seconds()
        while True:
            last = time.monotonic() >= give_up
            since = self._waker.mark()
            rows = self._claim(request, remember=last)
            if rows or last:  # rows, even if all undecodable: the token is remembered
                return self._leases(rows)
            self._waker.wait(since, give_up - time.monotonic())

    def _claim(self, request: ClaimRequest, *, remember: bool) -> list[Any]:
        with self._conn() as conn:
            return self._claim_on(conn, request, remember=remember)

    def _claim_on(
        self, conn: psycopg.Connection[Any], request: ClaimRequest, *, remember: bool
    ) -> list[Any]:
        params = {
            "queues": list(request.queues),
            "limit": request.limit,
            "lease": request.lease,
            "token": request.claim_token,
            "worker": request.worker,
            "now": self._now(),
            "remember": remember,
            **_claim_extras(request),
        }
        return conn.execute(self._sql["claim"], params).fetchall()

    def _leases(self, rows: list[Any]) -> list[Lease]:
        """Leases of the claimed rows, in claim order; an undecodable job is buried (after
        the claim's transaction, whose row locks the burial needs)."""
        leases = []
        for _, queue, job_id, blob, token, attempts, deadline, fence, lapses in sorted(rows):
            try:
                job = self._rows.decode_job(queue, job_id, bytes(blob))
            except UndecodableJob as error:
                self._bury_undecodable(queue, job_id, token, attempts, error)
                continue
            ahead = lapses is not None
            leases.append(
                Lease(job, token, attempts, deadline, fence, ahead=ahead, lapses=lapses or 0)
            )
        return leases

    def _bury_undecodable(
        self, queue: str, job_id: str, token: str, attempts: int, error: UndecodableJob
    ) -> None:
        info = ErrorInfo(type="UndecodableJob", message=str(error), attempt=attempts)
        placeholder = Lease(self._rows.job(queue, job_id, b""), token, attempts, _EPOCH)
        self.fail(placeholder, info, Dead(f"undecodable: {error.reason}"))

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool | QueueBroken], list[Lease]]:
        """``complete_many`` then ``claim`` in one function call (one round trip, one
        commit); a claim that finds nothing then waits as ``claim`` does. An error rolls the
        whole call back and is raised: no completion is refused on its own."""
        if not leases:
            return [], self.claim(request)
        params = {
            **self._writes.complete_params(leases, results),
            "claim_queues": list(request.queues),
            "limit": request.limit,
            "lease": request.lease,
            "token": request.claim_token,
            "worker": request.worker,
            "remember": request.wait <= timedelta(0),
            **_claim_extras(request),
        }
        with self._conn() as conn:
            rows = conn.execute(self._sql["complete_and_claim"], params).fetchall()
        ended = [(-row[0], row[9]) for row in rows if row[0] < 0]
        taken = [row[:9] for row in rows if row[0] > 0]
        applied: list[bool | QueueBroken] = [*self._writes.applied(leases, ended)]
        claimed = self._leases(taken)
        if taken or request.wait <= timedelta(0):
            return applied, claimed
        return applied, self.claim(request)

    # -- what a worker writes -------------------------------------------------------------------
    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        """See ``QueuePort.renew``."""
        return self._writes.renew(leases, duration)

    def complete(self, lease: Lease, result: Any = None) -> None:
        """See ``QueuePort.complete``."""
        self._writes.complete(lease, result)

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool | QueueBroken]:
        """See ``QueuePort.complete_many`` (no queue's data is refused here: every answer is
        a ``bool``)."""
        return [*self._writes.complete_many(leases, results)]

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        """See ``QueuePort.fail``."""
        return self._writes.fail(lease, error, decision)

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """See ``QueuePort.release``."""
        self._writes.release(lease, delay)

    def reap(self) -> int:
        """See ``QueuePort.reap``; also forgets the ended batches whose time is up."""
        recovered = self._writes.reap()
        self._batches.forget_expired()
        return recovered

    def _now(self) -> datetime | None:
        return self._db.now()

    def _conn(self) -> Any:
        return self._db.conn()

    # -- inspection and admin (admin.py), workers (workers.py), schedules (schedules.py) -------

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """See ``QueuePort.get``."""
        return self._admin.get(given_id(job_id), given_optional_queue(queue))

    def wait(self, job_id: str, timeout: timedelta, queue: str | None = None) -> JobRecord | None:
        """See ``QueuePort.wait`` (not built on PostgreSQL yet)."""
        return self._admin.wait(given_id(job_id), timeout, given_optional_queue(queue))

    def cancel(
        self, job_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState | None:
        """See ``QueuePort.cancel`` (not built on PostgreSQL yet)."""
        return self._admin.cancel(given_id(job_id), given_optional_queue(queue), reason)

    def stats(self, queue: str) -> QueueStats:
        """See ``QueuePort.stats``."""
        return self._admin.stats(given_queue(queue))

    def stats_many(self, queues: Sequence[str]) -> list[QueueStats]:
        """See ``QueuePort.stats_many``."""
        return self._admin.stats_many(given_queues(queues))

    def queues(self) -> list[str]:
        """See ``QueuePort.queues``."""
        return self._admin.queues()

    def oldest_ready_age(self, queues: Sequence[str]) -> list[timedelta | None]:
        """See ``QueuePort.oldest_ready_age``."""
        return self._admin.oldest_ready_age(given_queues(queues))

    def jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 100
    ) -> list[JobRecord]:
        """See ``QueuePort.jobs``."""
        return self._admin.jobs(given_queue(queue), given_state(state), offset=offset, limit=limit)

    def dead(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """See ``QueuePort.dead``."""
        return self._admin.dead(given_queue(queue), offset=offset, limit=limit)

    def requeue_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """See ``QueuePort.requeue_dead``."""
        return self._admin.requeue_dead(given_queue(queue), given_ids(job_ids))

    def delete(self, queue: str, job_id: str) -> bool:
        """See ``QueuePort.delete``."""
        return self._admin.delete(given_queue(queue), given_id(job_id))

    def delete_pending(self, queue: str, job_id: str) -> bool:
        """See ``QueuePort.delete_pending``: one statement."""
        return self._admin.delete_pending(given_queue(queue), given_id(job_id))

    def delete_dead(self, queue: str, job_id: str) -> bool:
        """See ``QueuePort.delete_dead``: one statement."""
        return self._admin.delete_dead(given_queue(queue), given_id(job_id))

    def purge(self, queue: str) -> int:
        """See ``QueuePort.purge``."""
        return self._admin.purge(given_queue(queue))

    def purge_dead(self, queue: str) -> int:
        """See ``QueuePort.purge_dead``."""
        return self._admin.purge_dead(given_queue(queue))

    def pause(self, queue: str) -> None:
        """See ``QueuePort.pause``."""
        self._admin.pause(given_queue(queue))

    def resume(self, queue: str) -> None:
        """See ``QueuePort.resume``."""
        self._admin.resume(given_queue(queue))

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """See ``WorkerRegistry.heartbeat``."""
        self._workers.heartbeat(info, ttl)

    def workers(self) -> list[WorkerInfo]:
        """See ``WorkerRegistry.workers``."""
        return self._workers.workers()

    def forget_worker(self, worker_id: str) -> None:
        """See ``WorkerRegistry.forget_worker``."""
        self._workers.forget_worker(worker_id)

    def sync_schedules(self, entries: Sequence[ScheduleEntry], *, redefine: bool) -> None:
        """See ``SchedulePort.sync_schedules``."""
        self._schedules.sync_schedules(entries, redefine=redefine)

    def poll(self, queues: Sequence[str], limit: int, ahead: timedelta = timedelta(0)) -> Poll:
        """See ``SchedulePort.poll``."""
        return self._schedules.poll(queues, limit, ahead)

    def fire(self, firings: Sequence[Firing]) -> list[Fired]:
        """See ``SchedulePort.fire``."""
        return self._schedules.fire(firings)

    def orphan(self, queue: str, names: Sequence[str]) -> None:
        """See ``SchedulePort.orphan``."""
        self._schedules.orphan(queue, names)

    def schedule_states(self) -> ScheduleListing:
        """See ``SchedulePort.schedule_states``."""
        return self._schedules.schedule_states()

    def pause_schedule(self, queue: str, name: str) -> bool:
        """See ``SchedulePort.pause_schedule``."""
        return self._schedules.pause_schedule(given_queue(queue), given_name(name))

    def resume_schedule(self, queue: str, name: str, next_at: datetime) -> bool | None:
        """See ``SchedulePort.resume_schedule``."""
        return self._schedules.resume_schedule(given_queue(queue), given_name(name), next_at)

    def forget_schedule(self, queue: str, name: str) -> bool:
        """See ``SchedulePort.forget_schedule``."""
        return self._schedules.forget_schedule(given_queue(queue), given_name(name))

    # -- batches (BatchPort, batches.py) -------------------------------------------------------

    def enqueue_batches(self, items: Sequence[Job | Batch]) -> None:
        """See ``BatchPort.enqueue_batches``."""
        self._batches.enqueue_batches(items)

    def enqueue_batches_within(self, connection: object, items: Sequence[Job | Batch]) -> None:
        """See ``TransactionalEnqueue.enqueue_batches_within``: the same call, on the caller's
        connection (psycopg, SQLAlchemy or Django: ``lent.py``)."""
        lent = psycopg_connection(connection)
        with (
            in_foundrys_database(lent, self._db.settings),
            refusals(self._db.settings, callers=True),
            psycopg.Cursor(lent, row_factory=tuple_row) as cur,
        ):
            self._batches.enqueue_on(cur, items)

    def batch(self, batch_id: str, queue: str | None = None) -> BatchRecord | None:
        """See ``BatchPort.batch``."""
        return self._batches.batch(given_id(batch_id, "batch"), given_optional_queue(queue))

    def cancel_batch(
        self, batch_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> BatchRecord | None:
        """See ``BatchPort.cancel_batch``."""
        return self._batches.cancel_batch(
            given_id(batch_id, "batch"), given_optional_queue(queue), reason
        )

    def batches(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[BatchRecord]:
        """See ``BatchPort.batches``."""
        return self._batches.batches(given_queue(queue), offset, limit)

    def members(self, batch_id: str, queue: str) -> list[str] | None:
        """See ``BatchPort.members``."""
        return self._batches.members(given_id(batch_id, "batch"), given_queue(queue))

    def job_records(self, job_ids: Sequence[str], queue: str) -> list[JobRecord | None]:
        """See ``BatchPort.job_records``: one query."""
        return self._batches.job_records(given_ids(job_ids) or [], given_queue(queue))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _claim_extras(request: ClaimRequest) -> dict[str, Any]:
    """A claim's jobs to hold ahead and the held leases whose start it reports first."""
    started = request.started
    return {
        "ahead": request.ahead,
        "started_queues": [lease.queue for lease in started],
        "started_ids": [lease.job_id for lease in started],
        "started_tokens": [lease.token for lease in started],
    }


def _enqueued(
    executor: psycopg.Connection[Any] | psycopg.Cursor[Any], statement: bytes, params: Any
) -> list[Any]:
    """Run the enqueue call; an ``after`` id the queue does not hold, or a job id that is a
    kept batch's, is ``InvalidJob``."""
    try:
        return executor.execute(statement, params).fetchall()
    except psycopg.Error as error:
        invalid = refused(error)
        if invalid is None:
            raise
        raise invalid from None
