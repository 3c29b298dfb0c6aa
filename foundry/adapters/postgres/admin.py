"""Inspection and administration of the PostgreSQL queue: get, stats, listings, dead letters,
purges, pause."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import timedelta

from foundry.adapters.postgres.database import Database
from foundry.adapters.postgres.statements import PASS_SLOT_ON
from foundry.adapters.postgres.text_columns import without_nul
from foundry.adapters.postgres.waking import Waker
from foundry.domain import JobState, validate_queue_name
from foundry.ports import DeadLetter, JobRecord, QueueStats

_LISTING = {
    JobState.READY: "ready",
    JobState.DELAYED: "delayed",
    JobState.ACTIVE: "active",
    JobState.WAITING: "waiting",
    JobState.COMPLETED: "ended",
    JobState.DEAD: "ended",
    JobState.CANCELLED: "ended",
}

_REQUEUE = """
    WITH chosen AS (
        SELECT queue, id FROM {s}.jobs
         WHERE queue = %(queue)s AND state = 'dead'
           AND (%(ids)s::text[] IS NULL OR id = ANY (%(ids)s::text[]))
         ORDER BY seq FOR UPDATE
    )
    UPDATE {s}.jobs j
       SET state = 'ready', attempts = 0, reason = NULL, finished_at = NULL,
           seq = nextval('{s}.job_seq'), run_at = %(now)s
      FROM chosen WHERE j.queue = chosen.queue AND j.id = chosen.id
"""

_DELETE = f"""
    WITH gone AS (
        DELETE FROM {{s}}.jobs
         WHERE queue = %(queue)s AND state = ANY (%(states)s::text[])
           AND (%(id)s::text IS NULL OR id = %(id)s)
        RETURNING queue, id, unique_key, state, limit_key, limit_concurrency, parked
    ), left_ready AS (
        SELECT queue, limit_key, limit_concurrency FROM gone
         WHERE %(id)s::text IS NOT NULL AND state = 'ready' AND limit_concurrency IS NOT NULL
           AND parked IS NOT NULL
    ), {PASS_SLOT_ON}, freed AS (
        DELETE FROM {{s}}.unique_keys u USING gone
         WHERE u.queue = gone.queue AND u.key = gone.unique_key AND u.job_id = gone.id
    ), told AS (
        SELECT {{s}}.ended(gone.queue, gone.id),
               {{s}}.settle(gone.queue, gone.id, true, %(now)s::timestamptz, %(keep)s::interval,
                          %(max_dead)s::integer, %(dead_age)s::interval)
          FROM gone
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM told),
           {{s}}.wake(ARRAY(SELECT queue FROM passed))
"""

_PENDING = ["ready", "delayed"]

#: How long after its timeout a waiter's row is kept (a waiter that died leaves it behind).
_SPARE = timedelta(minutes=1)


class PostgresAdmin:
    """The port's inspection and admin operations, each one statement."""

    def __init__(self, db: Database, keep: timedelta, ended: Waker) -> None:
        self._db = db
        self._keep = keep
        self._ended = ended
        self._requeue = db.sql.render(_REQUEUE)
        self._delete = db.sql.render(_DELETE)

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The job's record; searches every queue when ``queue`` is None."""
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            params = {"id": job_id, "queue": queue, "now": now}
            row = conn.execute(self._db.sql["record"], params).fetchone()
        return None if row is None else self._db.rows.record(row, now)

    def wait(self, job_id: str, timeout: timedelta, queue: str | None = None) -> JobRecord | None:
        """The record once final, or as it is when ``timeout`` (real time) runs out. The
        waiter is registered in ``waiters``, so the transition that ends the job NOTIFYs."""
        give_up = time.monotonic() + timeout.total_seconds()
        record = self.get(job_id, queue)
        if record is None or record.state.is_final or timeout <= timedelta(0):
            return record
        token = uuid.uuid4().hex
        waiter = {"token": token, "queue": record.job.queue, "id": job_id}
        with self._db.conn() as conn:
            conn.execute(self._db.sql["add_waiter"], {**waiter, "for": timeout + _SPARE})
        try:
            while True:
                since = self._ended.mark()
                record = self.get(job_id, queue)
                remaining = give_up - time.monotonic()
                if record is None or record.state.is_final or remaining <= 0:
                    return record
                self._ended.wait(since, remaining)
        finally:
            with self._db.conn() as conn:
                conn.execute(self._db.sql["drop_waiter"], {"token": token})

    def cancel(
        self, job_id: str, queue: str | None = None, reason: str = "cancelled"
    ) -> JobState | None:
        """Cancel a pending job, ask a running one to stop (see ``QueuePort.cancel``)."""
        params = {"queue": queue, "id": job_id, "reason": without_nul(reason), **self._db.policy}
        with self._db.conn() as conn:
            row = conn.execute(self._db.sql["cancel"], {**params, "now": self._db.now()}).fetchone()
        return None if row is None or row[0] is None else JobState(row[0])

    def stats(self, queue: str) -> QueueStats:
        """Sizes (counted: O(jobs of the queue)) and running totals of ``queue``."""
        return self.stats_many([queue])[0]

    def stats_many(self, queues: Sequence[str]) -> list[QueueStats]:
        """``stats`` of each queue, in one statement."""
        names = [validate_queue_name(name) for name in queues]
        if not names:
            return []
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            rows = conn.execute(self._db.sql["stats"], {"queues": names, "now": now}).fetchall()
        return [_stats(*row) for row in rows]

    def queues(self) -> list[str]:
        """Every queue that has held a job, sorted."""
        with self._db.conn() as conn:
            return [row[0] for row in conn.execute(self._db.sql["queues"]).fetchall()]

    def oldest_ready_age(self, queues: Sequence[str]) -> list[timedelta | None]:
        """Per queue, how long the longest-waiting head of a priority has waited."""
        names = [validate_queue_name(name) for name in queues]
        if not names:
            return []
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            rows = conn.execute(
                self._db.sql["oldest_ready"], {"queues": names, "now": now}
            ).fetchall()
        return [None if since is None else max(now - since, timedelta(0)) for _, since in rows]

    def jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 100
    ) -> list[JobRecord]:
        """Records of ``queue``'s jobs in ``state``, in the port's order."""
        validate_queue_name(queue)
        if limit < 1 or offset < 0:
            return []
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            params = {
                "queue": queue,
                "state": state.value,
                "now": now,
                "offset": offset,
                "limit": limit,
            }
            rows = conn.execute(self._db.sql.listing(_LISTING[state]), params).fetchall()
        return [self._db.rows.record(row, now) for row in rows]

    def dead(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """Dead letters of ``queue``, newest first."""
        if limit <= 0:
            return []
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            params = {
                "queue": queue,
                "state": "dead",
                "now": now,
                "offset": max(offset, 0),
                "limit": limit,
            }
            rows = conn.execute(self._db.sql.listing("ended"), params).fetchall()
        return [self._db.rows.letter(row, now) for row in rows]

    def requeue_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """Dead letters back to ready, oldest first, each with a new seq and 0 attempts."""
        with self._db.conn() as conn, conn.transaction():
            now = self._db.now_on(conn)
            ids = None if job_ids is None else list(job_ids)
            count = conn.execute(self._requeue, {"queue": queue, "ids": ids, "now": now}).rowcount
            if count:
                conn.execute(self._db.sql["wake"], {"queues": [queue]})
        return count

    def delete(self, queue: str, job_id: str) -> bool:
        """Remove a pending or dead job; False if unknown, running or ended otherwise."""
        return self._drop(queue, ["ready", "delayed", "waiting", "dead"], job_id) > 0

    def delete_pending(self, queue: str, job_id: str) -> bool:
        """Remove a pending job, only if it is one when the statement runs."""
        return self._drop(queue, ["ready", "delayed", "waiting"], job_id) > 0

    def delete_dead(self, queue: str, job_id: str) -> bool:
        """Remove a dead letter, only if it is one when the statement runs."""
        return self._drop(queue, ["dead"], job_id) > 0

    def purge(self, queue: str) -> int:
        """Remove every ready and delayed job of ``queue``."""
        return self._drop(queue, _PENDING, None)

    def purge_dead(self, queue: str) -> int:
        """Remove every dead letter of ``queue``."""
        return self._drop(queue, ["dead"], None)

    def pause(self, queue: str) -> None:
        """Stop claims from ``queue``."""
        self._set_paused(queue, paused=True)

    def resume(self, queue: str) -> None:
        """Let claims take from ``queue`` again (blocked claims are woken)."""
        self._set_paused(queue, paused=False)

    def _set_paused(self, queue: str, *, paused: bool) -> None:
        params = {"queue": validate_queue_name(queue), "paused": paused}
        with self._db.conn() as conn, conn.transaction():
            conn.execute(self._db.sql["pause"], params)
            if not paused:
                conn.execute(self._db.sql["wake"], {"queues": [queue]})

    def _drop(self, queue: str, states: list[str], job_id: str | None) -> int:
        params = {"queue": queue, "states": states, "id": job_id, **self._db.policy}
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            row = conn.execute(self._delete, {**params, "now": now}).fetchone()
        return int(row[0]) if row else 0


def _stats(queue: str, *sizes_and_totals: object) -> QueueStats:
    ready, delayed, active, dead, paused, completed, failed, trimmed, stale, waiting = (
        sizes_and_totals
    )
    return QueueStats(
        queue,
        ready=int(ready),  # type: ignore[call-overload]
        delayed=int(delayed),  # type: ignore[call-overload]
        active=int(active),  # type: ignore[call-overload]
        dead=int(dead),  # type: ignore[call-overload]
        paused=bool(paused),
        completed=int(completed),  # type: ignore[call-overload]
        failed=int(failed),  # type: ignore[call-overload]
        dead_trimmed=int(trimmed),  # type: ignore[call-overload]
        stale_rejected=int(stale),  # type: ignore[call-overload]
        waiting=int(waiting),  # type: ignore[call-overload]
    )
