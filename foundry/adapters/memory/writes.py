"""What a worker writes about the jobs it holds in the memory queue: renew, complete (one or a
batch), fail, release; and the reaper's recovery of leases that expired.

A write by a lease that no longer holds its job is refused (``StaleLease``), counted and
logged, unless it is the exact re-send of what that lease did last (Q8).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from foundry.adapters.cache_support import to_ms
from foundry.adapters.memory.dead import DeadLetters
from foundry.adapters.memory.records import EntryCodec, lost_error
from foundry.adapters.memory.store import (
    COMPLETE,
    FAIL,
    LOST,
    RELEASE,
    Entry,
    MemoryStore,
    QueueState,
)
from foundry.domain import Cancel, Dead, Decision, ErrorInfo, JobState, Retry, StaleLease
from foundry.ports import Lease

log = logging.getLogger(__name__)


class MemoryWrites:
    """The lease operations of ``QueuePort`` over the store, each under its lock."""

    def __init__(self, store: MemoryStore, records: EntryCodec, dead: DeadLetters) -> None:
        self._store = store
        self._cond = store.cond
        self._records = records
        self._dead = dead

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        """Extend each lease still held to now + ``duration``; None for a lost one."""
        with self._cond:
            deadline = self._store.tick() + duration
            return [self._renew(lease, deadline) for lease in leases]

    def complete(self, lease: Lease, result: Any = None) -> None:
        """Mark the job completed; its record is kept for ``completed_ttl``."""
        encoded = self._records.encode_result(result)
        with self._cond:
            self._complete(lease, encoded, self._store.tick())

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool]:
        """``complete`` each lease under one hold of the lock; ``False`` where it was stale."""
        chosen = [None] * len(leases) if results is None else results
        encoded = [self._records.encode_result(result) for result in chosen]
        with self._cond:
            now = self._store.tick()
            pairs = zip(leases, encoded, strict=True)
            return [self._completed(lease, blob, now) for lease, blob in pairs]

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        """Record ``error`` with this attempt's number, then retry (new seq) or bury."""
        with self._cond:
            now = self._store.tick()
            entry, fresh = self._current(lease, FAIL)
            if not fresh:
                return entry.last_state or entry.state
            state = self._store.queue(entry.queue)
            state.failed += 1
            entry.errors.append(attrs.evolve(error, attempt=entry.attempts, at=error.at or now))
            entry.end_lease(FAIL, entry.state)
            if isinstance(decision, Retry) and entry.stop is not None:
                decision = Cancel(entry.stop)  # asked to stop: never runs again
            match decision:
                case Retry(delay=delay):
                    entry.seq = state.next_seq()
                    state.schedule(entry, now + max(delay, timedelta(0)), now)
                    self._cond.notify_all()
                case Dead(reason=reason):
                    self._dead.bury(state, entry, reason, now)
                case Cancel(reason=reason):
                    self._store.cancelled(state, entry, reason, now)
            entry.last_state = entry.state
            return entry.state

    def release(self, lease: Lease, delay: timedelta = timedelta(0)) -> None:
        """Back to the front of its priority (seq kept), after ``delay``; attempt not spent."""
        with self._cond:
            now = self._store.tick()
            entry, fresh = self._current(lease, RELEASE)
            if not fresh:
                return
            if entry.stop is not None:
                entry.end_lease(RELEASE, JobState.CANCELLED)
                self._store.cancelled(self._store.queue(entry.queue), entry, entry.stop, now)
                return
            entry.attempts -= 1
            run_at = now + delay if delay > timedelta(0) else min(entry.run_at, now)
            entry.end_lease(RELEASE, JobState.READY if run_at <= now else JobState.DELAYED)
            self._store.queue(entry.queue).schedule(entry, run_at, now)
            self._cond.notify_all()

    def reap(self) -> int:
        """Recover every lease whose deadline is strictly before now; forget idle limit
        state."""
        with self._cond:
            now = self._store.tick()
            count = 0
            for state in self._store.states():
                state.limits.prune(to_ms(now))
                for entry in state.expired_leases(now):
                    self._lose(state, entry, now)
                    count += 1
            if count:
                self._cond.notify_all()
            return count

    def _current(self, lease: Lease, op: str) -> tuple[Entry, bool]:
        """The entry ``lease`` holds and True; or False if this is a re-send of ``op`` (Q8).

        Anything else is a stale lease: counted, logged and refused (Q4).
        """
        entry = self._store.entry(lease.queue, lease.job_id)
        if entry is not None and entry.holds(lease.token):
            return entry, True
        if entry is not None and entry.ended(lease.token, op):
            return entry, False
        self._store.queue(lease.queue).stale_rejected += 1
        log.warning(
            "refused %s with stale lease %s",
            op,
            lease.token,
            extra={"job_id": lease.job_id, "queue": lease.queue},
        )
        raise StaleLease(lease.job_id, lease.token)

    def _renew(self, lease: Lease, deadline: datetime) -> Lease | None:
        entry = self._store.entry(lease.queue, lease.job_id)
        if entry is None or not entry.holds(lease.token):
            return None
        entry.deadline = deadline
        if not lease.ahead:  # renewed as started: a start reported
            entry.ahead = False
        if lease.progress is not None:
            entry.progress = lease.progress
        return attrs.evolve(lease, deadline=deadline, stop=entry.stop)

    def _complete(self, lease: Lease, encoded: bytes, now: datetime) -> None:
        entry, fresh = self._current(lease, COMPLETE)
        if not fresh:
            return
        entry.end_lease(COMPLETE, JobState.COMPLETED)
        entry.result = encoded
        self._store.completed(self._store.queue(entry.queue), entry, now)

    def _completed(self, lease: Lease, encoded: bytes, now: datetime) -> bool:
        try:
            self._complete(lease, encoded, now)
        except StaleLease:
            return False
        return True

    def _lose(self, state: QueueState, entry: Entry, now: datetime) -> None:
        log.warning(
            "lease %s expired at %s; recovering",
            entry.token,
            entry.deadline,
            extra={"job_id": entry.job_id, "queue": entry.queue, "attempt": entry.attempts},
        )
        if entry.stop is not None:
            entry.end_lease(LOST, JobState.CANCELLED)
            self._store.cancelled(state, entry, entry.stop, now)
        elif entry.ahead:  # held ahead, never reported started: its attempt is given back
            entry.attempts -= 1
            entry.unstarted_lapses += 1
            entry.end_lease(LOST, JobState.READY)
            state.schedule(entry, min(entry.run_at, now), now)
        elif entry.attempts >= entry.max_attempts:
            entry.errors.append(lost_error(entry, now))
            entry.end_lease(LOST, JobState.DEAD)
            self._dead.bury(state, entry, "lease lost", now)
        else:
            entry.end_lease(LOST, JobState.READY)
            state.schedule(entry, min(entry.run_at, now), now)
