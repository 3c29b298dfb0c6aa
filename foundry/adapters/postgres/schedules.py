"""The PostgreSQL queue's ``SchedulePort``: schedules' state in the ``schedules`` table.

A firing is one transaction: the schedule's row is locked, checked (still at ``due_from``,
same definition, not paused or orphaned), its tick's jobs enqueued by the queue's own
``enqueue`` function and its next tick moved; or nothing is written.

Costs: ``poll`` O(log n + due) on the ``schedules_due`` index; ``fire`` one transaction per
firing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from foundry.adapters.postgres.database import Database
from foundry.adapters.postgres.enqueuing import enqueue_params, outcomes
from foundry.ports import Duplicate
from foundry.ports.schedule_types import (
    DueSchedule,
    Fired,
    Firing,
    Poll,
    ScheduleEntry,
    ScheduleListing,
    ScheduleState,
)

_SYNC = """
    INSERT INTO {s}.schedules (queue, name, definition, next_at)
    VALUES (%(queue)s, %(name)s, %(definition)s, %(first_at)s)
    ON CONFLICT (queue, name) DO UPDATE
       SET definition = excluded.definition, next_at = excluded.next_at, orphaned = false
     WHERE {s}.schedules.orphaned
        OR (%(redefine)s AND {s}.schedules.definition <> excluded.definition)
"""
_DUE = """
    SELECT name, queue, definition, next_at FROM {s}.schedules
     WHERE queue = ANY (%(queues)s::text[]) AND NOT paused AND NOT orphaned
       AND next_at <= %(until)s
     ORDER BY next_at, name LIMIT %(limit)s
"""
_NEXT = """
    SELECT min(next_at) FROM {s}.schedules
     WHERE queue = ANY (%(queues)s::text[]) AND NOT paused AND NOT orphaned
       AND next_at > %(until)s
"""
_LOCK = """
    SELECT definition, next_at, paused, orphaned FROM {s}.schedules
     WHERE queue = %(queue)s AND name = %(name)s FOR UPDATE
"""
_STEP = """
    UPDATE {s}.schedules
       SET next_at = %(next_at)s, last_tick = coalesce(%(last_tick)s, last_tick),
           last_job_id = coalesce(%(last_job_id)s, last_job_id)
     WHERE queue = %(queue)s AND name = %(name)s
"""
_STATES = """
    SELECT name, queue, definition, next_at, last_tick, last_job_id, paused, orphaned
      FROM {s}.schedules ORDER BY name, queue
"""
_ORPHAN = """
    UPDATE {s}.schedules SET orphaned = true WHERE queue = %(queue)s AND name = ANY (%(names)s)
"""
_PAUSE = "UPDATE {s}.schedules SET paused = true WHERE queue = %(queue)s AND name = %(name)s"
_RESUME = """
    WITH resumed AS (
        UPDATE {s}.schedules SET paused = false, orphaned = false, next_at = %(next_at)s
         WHERE queue = %(queue)s AND name = %(name)s AND (paused OR orphaned)
        RETURNING name
    )
    SELECT EXISTS (SELECT FROM resumed),
           EXISTS (SELECT FROM {s}.schedules WHERE queue = %(queue)s AND name = %(name)s)
"""
_FORGET = "DELETE FROM {s}.schedules WHERE queue = %(queue)s AND name = %(name)s"


class PostgresSchedules:
    """Schedules' state beside the jobs, in the same schema."""

    def __init__(self, db: Database) -> None:
        self._db = db
        render = db.sql.render
        self._sync, self._due, self._next = render(_SYNC), render(_DUE), render(_NEXT)
        self._lock, self._step, self._states = render(_LOCK), render(_STEP), render(_STATES)
        self._orphan, self._pause = render(_ORPHAN), render(_PAUSE)
        self._resume, self._forget = render(_RESUME), render(_FORGET)

    def sync_schedules(self, entries: Sequence[ScheduleEntry], *, redefine: bool) -> None:
        """Know every declared schedule (see ``SchedulePort.sync_schedules``)."""
        with self._db.conn() as conn, conn.transaction():
            for entry in entries:
                conn.execute(
                    self._sync,
                    {
                        "queue": entry.queue,
                        "name": entry.name,
                        "definition": entry.definition,
                        "first_at": entry.first_at,
                        "redefine": redefine,
                    },
                )

    def poll(self, queues: Sequence[str], limit: int, ahead: timedelta = timedelta(0)) -> Poll:
        """The queue's now and the schedules of ``queues`` due by now + ``ahead``."""
        names = list(dict.fromkeys(queues))
        with self._db.conn() as conn:
            now = self._db.now_on(conn)
            params = {"queues": names, "until": now + ahead, "limit": max(limit, 0) + 1}
            rows = conn.execute(self._due, params).fetchall()
            after = conn.execute(self._next, params).fetchone()
        due = tuple(
            DueSchedule(name, queue, definition, next_at)
            for name, queue, definition, next_at in rows[: max(limit, 0)]
        )
        # More due than asked for: no next tick to wait for, look again at once.
        next_at = None if len(rows) > len(due) or not after or after[0] is None else after[0]
        return Poll(now, due, next_at)

    def fire(self, firings: Sequence[Firing]) -> list[Fired]:
        """Each firing in its own transaction (every job encoded before any write)."""
        blobs = [[self._db.rows.encode_job(job) for _, job in firing.jobs] for firing in firings]
        with self._db.conn() as conn:
            return [
                self._fire(conn, firing, blob) for firing, blob in zip(firings, blobs, strict=True)
            ]

    def _fire(self, conn: psycopg.Connection[Any], firing: Firing, blobs: list[bytes]) -> Fired:
        with conn.transaction():
            key = {"queue": firing.queue, "name": firing.name}
            row = conn.execute(self._lock, key).fetchone()
            if row is None or not _stands(row, firing):
                return Fired(firing.name, applied=False)
            jobs = [job for _, job in firing.jobs]
            answers = []
            if jobs:
                params = enqueue_params(jobs, blobs, self._db.now(), self._db.policy)
                rows = conn.execute(self._db.sql["enqueue_ticks"], params).fetchall()
                answers = outcomes(jobs, rows)
            last_tick, last_job = None, None
            for (tick, job), outcome in zip(firing.jobs, answers, strict=True):
                last_tick = tick
                if not isinstance(outcome, Duplicate):
                    last_job = job.id
            step = {
                **key,
                "next_at": firing.next_at,
                "last_tick": last_tick,
                "last_job_id": last_job,
            }
            conn.execute(self._step, step)
        return Fired(firing.name, applied=True, outcomes=tuple(answers))

    def orphan(self, queue: str, names: Sequence[str]) -> None:
        """Stop the named schedules being due; they stay listed as orphaned."""
        with self._db.conn() as conn:
            conn.execute(self._orphan, {"queue": queue, "names": list(names)})

    def schedule_states(self) -> ScheduleListing:
        """Every schedule known, by name then queue (no queue is ever broken here)."""
        with self._db.conn() as conn:
            rows = conn.execute(self._states).fetchall()
        return ScheduleListing(tuple(_state(row) for row in rows))

    def pause_schedule(self, queue: str, name: str) -> bool:
        """Stop the schedule firing."""
        return self._change(self._pause, {"queue": queue, "name": name})

    def resume_schedule(self, queue: str, name: str, next_at: datetime) -> bool | None:
        """Fire again from ``next_at``: one statement."""
        params = {"queue": queue, "name": name, "next_at": next_at}
        with self._db.conn() as conn:
            row = conn.execute(self._resume, params).fetchone()
        resumed, stored = row if row is not None else (False, False)
        return True if resumed else (False if stored else None)

    def forget_schedule(self, queue: str, name: str) -> bool:
        """Remove the schedule's state."""
        return self._change(self._forget, {"queue": queue, "name": name})

    def _change(self, statement: bytes, params: dict[str, Any]) -> bool:
        with self._db.conn() as conn:
            return conn.execute(statement, params).rowcount > 0


def _stands(row: tuple[Any, ...], firing: Firing) -> bool:
    definition, next_at, paused, orphaned = row
    return (
        not paused
        and not orphaned
        and next_at is not None
        and next_at == firing.due_from
        and definition == firing.definition
    )


def _state(row: tuple[Any, ...]) -> ScheduleState:
    name, queue, definition, next_at, last_tick, last_job_id, paused, orphaned = row
    waiting = next_at is not None and not paused and not orphaned
    return ScheduleState(
        name=name,
        queue=queue,
        definition=definition,
        next_at=next_at if waiting else None,
        last_tick=last_tick,
        last_job_id=last_job_id,
        paused=paused,
        orphaned=orphaned,
    )
