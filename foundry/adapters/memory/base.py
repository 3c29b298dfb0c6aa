"""State and shared steps of the memory queue: the lock, the clock, expiry and dead letters."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import orjson
from loguru import logger

from foundry.adapters.codec import Codec
from foundry.adapters.memory.store import Entry, Expiring, QueueState, UniqueKeys, age_limit
from foundry.domain import (
    ConfigurationError,
    ErrorInfo,
    Job,
    JobState,
    StaleLease,
    UndecodableJob,
)
from foundry.ports import Clock, DeadLetter, DeadLetterRetention, JobRecord, Lease, WorkerInfo

#: The name a job is shown under when its stored form cannot be decoded.
UNDECODABLE_NAME = "undecodable"
DEFAULT_RETENTION = DeadLetterRetention()


class MemoryQueueBase:
    """The memory queue's state and the steps its operations share. One lock guards it all."""

    def __init__(
        self,
        clock: Clock,
        codec: Codec | None = None,
        retention: DeadLetterRetention = DEFAULT_RETENTION,
        completed_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        if completed_ttl <= timedelta(0):
            raise ConfigurationError(f"completed_ttl must be positive, got {completed_ttl}")
        self._clock = clock
        self._codec = codec or Codec()
        self._retention = retention
        self._completed_ttl = completed_ttl
        self._cond = threading.Condition(threading.RLock())
        self._queues: dict[str, QueueState] = {}
        self._unique = UniqueKeys()
        self._completed_expiry = Expiring()
        self._claims: dict[str, list[tuple[str, str, str]]] = {}
        self._claim_expiry = Expiring()
        self._workers: dict[str, tuple[WorkerInfo, datetime]] = {}

    # -- time and bookkeeping -----------------------------------------------------------------

    def _tick(self) -> datetime:
        """The current time, after forgetting what expired by then (bounded memory)."""
        now = self._clock.now()
        for queue, job_id in self._completed_expiry.due(now):
            state = self._queues.get(queue)
            entry = state.jobs.get(job_id) if state else None
            if state and entry and entry.state is JobState.COMPLETED:
                state.remove(entry)
        for _, claim_token in self._claim_expiry.due(now):
            self._claims.pop(claim_token, None)
        return now

    def _queue(self, name: str) -> QueueState:
        state = self._queues.get(name)
        if state is None:
            state = self._queues[name] = QueueState(name)
        return state

    def _entry(self, queue: str, job_id: str) -> Entry | None:
        state = self._queues.get(queue)
        return state.jobs.get(job_id) if state else None

    # -- leases -------------------------------------------------------------------------------

    def _current(self, lease: Lease, op: str) -> tuple[Entry, bool]:
        """The entry ``lease`` holds and True; or False if this is a re-send of ``op`` (Q8).

        Anything else is a stale lease: counted, logged and refused (Q4).
        """
        entry = self._entry(lease.queue, lease.job_id)
        if entry is not None and entry.holds(lease.token):
            return entry, True
        if entry is not None and entry.ended(lease.token, op):
            return entry, False
        self._queue(lease.queue).stale_rejected += 1
        with logger.contextualize(job_id=lease.job_id, queue=lease.queue):
            logger.warning("refused {} with stale lease {}", op, lease.token)
        raise StaleLease(lease.job_id, lease.token)

    # -- dead letters -------------------------------------------------------------------------

    def _bury(self, state: QueueState, entry: Entry, reason: str, now: datetime) -> None:
        """Move the entry to the dead letters, then apply the retention policy."""
        state.move(entry, JobState.DEAD)
        entry.reason = reason
        entry.finished_at = now
        self._unique.release(entry)
        with logger.contextualize(job_id=entry.job_id, queue=entry.queue):
            logger.warning("job is dead after {} attempt(s): {}", entry.attempts, reason)
        self._trim_dead(state, now)

    def _trim_dead(self, state: QueueState, now: datetime) -> None:
        oldest_kept = age_limit(now, self._retention.max_age)
        max_count = self._retention.max_count
        trimmed = 0
        while state.dead:
            oldest = state.oldest_dead()
            too_many = max_count is not None and len(state.dead) > max_count
            too_old = oldest_kept is not None and (oldest.finished_at or now) < oldest_kept
            if not (too_many or too_old):
                break
            state.remove(oldest)
            trimmed += 1
        if trimmed:
            state.dead_trimmed += trimmed
            logger.info("trimmed {} dead letter(s) of queue {} by retention", trimmed, state.name)

    # -- what inspection shows ----------------------------------------------------------------

    def _shown_job(self, entry: Entry) -> Job:
        """The stored job, or a placeholder naming why it cannot be decoded."""
        try:
            return self._codec.decode_job(entry.blob, entry.job_id)
        except UndecodableJob as error:
            return Job(
                UNDECODABLE_NAME,
                id=entry.job_id,
                queue=entry.queue,
                priority=entry.priority,
                metadata={"undecodable": error.reason},
            )

    def _record(self, entry: Entry) -> JobRecord:
        return JobRecord(
            job=self._shown_job(entry),
            state=entry.state,
            attempts=entry.attempts,
            enqueued_at=entry.enqueued_at,
            run_at=entry.run_at,
            lease_deadline=entry.deadline,
            errors=tuple(entry.errors),
            result=None if entry.result is None else orjson.loads(entry.result),
            reason=entry.reason,
            finished_at=entry.finished_at,
        )

    def _letter(self, entry: Entry) -> DeadLetter:
        return DeadLetter(
            job=self._shown_job(entry),
            reason=entry.reason or "",
            attempts=entry.attempts,
            died_at=entry.finished_at or entry.enqueued_at,
            errors=tuple(entry.errors),
        )

    @staticmethod
    def _lost_error(entry: Entry, now: datetime) -> ErrorInfo:
        return ErrorInfo(
            type="LeaseLost",
            message="the lease expired before the job finished (its worker died or stalled)",
            attempt=entry.attempts,
            at=now,
            worker=entry.worker,
        )
