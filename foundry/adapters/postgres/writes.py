"""What a worker writes about the jobs it holds in the PostgreSQL queue: renew, complete (one
or a batch), fail, release; and the reaper's recovery of leases that expired.

Each is one call of the schema's function of that name (0001_queue.sql), which refuses a
lease that no longer holds its job (counted: ``StaleLease`` here) unless the call is the
exact re-send of what that lease did last (Q8).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import psycopg

from foundry.adapters.postgres.database import Database
from foundry.adapters.postgres.rows import lost_error
from foundry.adapters.postgres.text_columns import without_nul
from foundry.domain import Cancel, Dead, Decision, ErrorInfo, JobState, Retry, StaleLease
from foundry.ports import DeadLetterRetention, Lease

log = logging.getLogger("foundry.postgres")


class PostgresWrites:
    """The lease operations of ``QueuePort``, one function call each."""

    def __init__(self, db: Database, retention: DeadLetterRetention, keep: timedelta) -> None:
        self._db = db
        self._sql = db.sql
        self._rows = db.rows
        self._retention = retention
        self._keep = keep

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        """Extend each lease still held (and store its progress); ``None`` for a lost one."""
        if not leases:
            return []
        params = {
            **_lease_arrays(leases),
            "progress": [
                None if lease.progress is None else self._rows.codec.encode(lease.progress)
                for lease in leases
            ],
            "duration": duration,
            "now": self._now(),
            "started": [not lease.ahead for lease in leases],
        }
        with self._conn() as conn:
            rows = conn.execute(self._sql["renew"], params).fetchall()
        renewed: list[Lease | None] = [None] * len(leases)
        for i, deadline, stop in rows:
            renewed[i - 1] = attrs.evolve(leases[i - 1], deadline=deadline, stop=stop)
        return renewed

    def complete(self, lease: Lease, result: Any = None) -> None:
        """Mark the job completed (see ``QueuePort.complete``)."""
        if not self.complete_many([lease], [result])[0]:
            raise StaleLease(lease.job_id, lease.token)

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool]:
        """Complete every lease in one call; ``False`` where it was stale (counted)."""
        if not leases:
            return []
        params = self.complete_params(leases, results)
        with self._conn() as conn:
            rows = conn.execute(self._sql["complete"], params).fetchall()
        return self.applied(leases, rows)

    def complete_params(
        self, leases: Sequence[Lease], results: Sequence[Any] | None
    ) -> dict[str, Any]:
        """The ``complete`` call's arguments (every result encoded, so checked, first)."""
        chosen = [None] * len(leases) if results is None else results
        return {
            **_lease_arrays(leases),
            "results": [self._rows.codec.encode_result(result) for result in chosen],
            "keep": self._keep,
            "now": self._now(),
        }

    def applied(self, leases: Sequence[Lease], rows: Sequence[tuple[int, bool]]) -> list[bool]:
        """Whether each lease was applied, from the ``(i, applied)`` rows of a completion
        (stale ones logged)."""
        applied = [bool(ok) for _, ok in sorted(rows)]
        for lease, ok in zip(leases, applied, strict=True):
            if not ok:
                _log_stale("complete", lease)
        return applied

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        """Record ``error`` and apply ``decision`` (see ``QueuePort.fail``)."""
        now = self._now()
        info = attrs.evolve(error, attempt=lease.attempt, at=error.at or now or _utcnow())
        kind, delay, reason = _decision(decision)
        params = {
            "queue": lease.queue,
            "id": lease.job_id,
            "token": lease.token,
            "error": self._rows.codec.encode(info),
            "kind": kind,
            "delay": delay,
            "reason": without_nul(reason),
            **self._dead_policy(),
            "now": now,
        }
        with self._conn() as conn:
            row = conn.execute(self._sql["fail"], params).fetchone()
        if row is None or row[0] is None:
            _log_stale("fail", lease)
            raise StaleLease(lease.job_id, lease.token)
        return JobState(row[0])

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """Give the job back unspent (see ``QueuePort.release``)."""
        params = {
            "queue": lease.queue,
            "id": lease.job_id,
            "token": lease.token,
            "delay": max(delay, timedelta(0)),
            "keep": self._keep,
            "now": self._now(),
        }
        with self._conn() as conn:
            row = conn.execute(self._sql["release"], params).fetchone()
        if row is None or not row[0]:
            _log_stale("release", lease)
            raise StaleLease(lease.job_id, lease.token)

    def reap(self) -> int:
        """Recover every lease whose deadline has passed (Q5), in batches; also forgets the
        ended records and claim tokens whose time is up, and limit keys left idle."""
        recovered = 0
        while True:
            with self._conn() as conn, conn.transaction():
                now = self._db_now(conn)
                expired = conn.execute(self._sql["expired"], {"now": now}).fetchall()
                for row in expired:
                    self._lose(conn, row, now)
                if not expired:
                    conn.execute(self._sql["forget_expired"], {"now": now})
                    conn.execute(self._sql["forget_tokens"], {"now": now})
                    conn.execute(self._sql["forget_waiters"])
                    conn.execute(self._sql["forget_limit_keys"], {"now": now})
            recovered += len(expired)
            if not expired:
                return recovered

    def _lose(self, conn: Any, row: tuple[Any, ...], now: datetime) -> None:
        queue, job_id, token, attempts, max_attempts, worker, stop, deadline, run_at, ahead = row
        log.warning(
            "lease %s expired at %s; recovering",
            token,
            deadline,
            extra={"job_id": job_id, "queue": queue, "attempt": attempts},
        )
        kind, reason = "retry", None
        if stop is not None:
            kind, reason = "cancel", stop
        elif ahead:  # held ahead, never started: its attempt comes back (lapses counted)
            conn.execute(self._sql["give_back"], {"queue": queue, "id": job_id})
        elif attempts >= max_attempts:
            kind, reason = "dead", "lease lost"
            error = self._rows.codec.encode(lost_error(attempts, worker, now))
            conn.execute(self._sql["append_error"], {"error": error, "queue": queue, "id": job_id})
        params = {
            "queue": queue,
            "id": job_id,
            "kind": kind,
            "run_at": min(run_at, now),
            "reason": without_nul(reason),
            "now": now,
            **self._dead_policy(),
        }
        conn.execute(self._sql["lose"], params)

    def _now(self) -> datetime | None:
        return self._db.now()

    def _db_now(self, conn: psycopg.Connection[Any]) -> datetime:
        return self._db.now_on(conn)

    def _dead_policy(self) -> dict[str, Any]:
        return {
            "keep": self._keep,
            "max_dead": self._retention.max_count,
            "dead_age": self._retention.max_age,
        }

    def _conn(self) -> Any:
        return self._db.conn()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _lease_arrays(leases: Sequence[Lease]) -> dict[str, list[str]]:
    return {
        "queues": [lease.queue for lease in leases],
        "ids": [lease.job_id for lease in leases],
        "tokens": [lease.token for lease in leases],
    }


def _decision(decision: Decision) -> tuple[str, timedelta, str | None]:
    match decision:
        case Retry(delay=delay):
            return "retry", max(delay, timedelta(0)), None
        case Dead(reason=reason):
            return "dead", timedelta(0), reason
        case Cancel(reason=reason):
            return "cancel", timedelta(0), reason
    raise TypeError(f"not a retry decision: {decision!r}")


def _log_stale(op: str, lease: Lease) -> None:
    log.warning(
        "refused %s with stale lease %s",
        op,
        lease.token,
        extra={"job_id": lease.job_id, "queue": lease.queue},
    )
