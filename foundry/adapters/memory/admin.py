"""Inspection and administration of the memory queue: get, stats, dead letters, purges, pause."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from foundry.adapters.memory.records import EntryCodec
from foundry.adapters.memory.store import Entry, MemoryStore
from foundry.domain import JobState, validate_queue_name
from foundry.ports import DeadLetter, JobRecord, QueueStats

_PENDING = (JobState.READY, JobState.DELAYED)
_DELETABLE = (JobState.READY, JobState.DELAYED, JobState.WAITING, JobState.DEAD)


class MemoryAdmin:
    """The port's inspection and admin operations over the store, each under its lock."""

    def __init__(self, store: MemoryStore, records: EntryCodec) -> None:
        self._store = store
        self._cond = store.cond
        self._records = records

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The job's record; searches every queue when ``queue`` is None."""
        with self._cond:
            now = self._store.tick()
            names = [queue] if queue is not None else self._store.names()
            for name in names:
                state = self._store.find(name, now)
                entry = state.jobs.get(job_id) if state else None
                if entry is not None:
                    return self._records.record(entry)
            return None

    def wait(self, job_id: str, timeout: timedelta, queue: str | None = None) -> JobRecord | None:
        """The record once final, or as it is when ``timeout`` (real time) runs out."""
        give_up = time.monotonic() + timeout.total_seconds()
        with self._store.settled:
            while True:
                record = self.get(job_id, queue)
                remaining = give_up - time.monotonic()
                if record is None or record.state.is_final or remaining <= 0:
                    return record
                self._store.settled.wait(remaining)

    def cancel(self, job_id: str, queue: str | None, reason: str) -> JobState | None:
        """A pending job cancelled; see ``QueuePort.cancel``."""
        with self._cond:
            now = self._store.tick()
            for name in [queue] if queue is not None else self._store.names():
                state = self._store.find(name, now)
                entry = state.jobs.get(job_id) if state else None
                if state is not None and entry is not None:
                    if entry.state.on_cancel() is not entry.state:
                        self._store.cancelled(state, entry, reason, now)
                    elif entry.state is JobState.ACTIVE and entry.stop is None:
                        entry.stop = reason
                    return entry.state
            return None

    def stats(self, queue: str) -> QueueStats:
        """Sizes and totals of ``queue``; O(1)."""
        with self._cond:
            state = self._store.find(queue, self._store.tick())
            if state is None:
                return QueueStats(queue)
            counts = state.counts
            return QueueStats(
                queue,
                ready=counts[JobState.READY],
                delayed=counts[JobState.DELAYED],
                active=counts[JobState.ACTIVE],
                dead=len(state.dead),
                paused=state.paused,
                completed=state.completed,
                failed=state.failed,
                dead_trimmed=state.dead_trimmed,
                stale_rejected=state.stale_rejected,
                waiting=counts[JobState.WAITING],
            )

    def stats_many(self, queues: Sequence[str]) -> list[QueueStats]:
        """``stats`` of each queue, in order (names checked first, as Redis does)."""
        return [self.stats(name) for name in [validate_queue_name(name) for name in queues]]

    def queues(self) -> list[str]:
        """Every queue that has held a job or been paused, sorted."""
        with self._cond:
            states = self._store.states()
            return sorted(state.name for state in states if state.seq > 0 or state.listed)

    def oldest_ready_age(self, queues: Sequence[str]) -> list[timedelta | None]:
        """Scans each queue's jobs (a fake's cost): per priority, the ready job next in line
        has waited since its run time (when it last became ready)."""
        with self._cond:
            now = self._store.tick()
            return [self._oldest_ready_age(name, now) for name in queues]

    def _oldest_ready_age(self, queue: str, now: datetime) -> timedelta | None:
        state = self._store.find(validate_queue_name(queue), now)
        if state is None:
            return None
        heads: dict[int, Entry] = {}
        for entry in state.jobs.values():
            head = heads.get(entry.priority)
            if entry.state is JobState.READY and (head is None or entry.seq < head.seq):
                heads[entry.priority] = entry
        if not heads:
            return None
        return max(now - min(entry.run_at for entry in heads.values()), timedelta(0))

    def jobs(
        self, queue: str, state: JobState, *, offset: int = 0, limit: int = 100
    ) -> list[JobRecord]:
        """Sorts the queue's entries in ``state`` (a fake's cost)."""
        with self._cond:
            found = self._store.find(validate_queue_name(queue), self._store.tick())
            if found is None or limit < 1 or offset < 0:
                return []
            if state is JobState.DEAD:
                chosen = [found.jobs[job_id] for job_id in reversed(found.dead)]
            else:
                chosen = sorted(
                    (entry for entry in found.jobs.values() if entry.state is state),
                    key=_ORDER.get(state, _by_seq),
                )
            return [self._records.record(entry) for entry in chosen[offset : offset + limit]]

    def dead(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """Dead letters of ``queue``, newest first."""
        with self._cond:
            self._store.tick()
            state = self._store.find(queue)
            if state is None or limit <= 0:
                return []
            newest_first = list(reversed(state.dead))[max(offset, 0) : max(offset, 0) + limit]
            return [self._records.letter(state.jobs[job_id]) for job_id in newest_first]

    def requeue_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """Dead letters back to ready, oldest first, each with a new seq and 0 attempts."""
        with self._cond:
            now = self._store.tick()
            state = self._store.find(queue)
            if state is None:
                return 0
            chosen = list(state.dead) if job_ids is None else list(dict.fromkeys(job_ids))
            count = 0
            for job_id in chosen:
                entry = state.jobs.get(job_id)
                if entry is not None and entry.state is JobState.DEAD:
                    entry.attempts = 0
                    entry.reason = None
                    entry.finished_at = None
                    entry.seq = state.next_seq()
                    state.schedule(entry, now, now)
                    count += 1
            if count:
                self._cond.notify_all()
            return count

    def delete(self, queue: str, job_id: str, states: tuple[JobState, ...] = _DELETABLE) -> bool:
        """Remove a job now in one of ``states`` (pending or dead); False if unknown or in
        another state."""
        with self._cond:
            state = self._store.find(queue, self._store.tick())
            entry = state.jobs.get(job_id) if state else None
            if state is None or entry is None or entry.state not in states:
                return False
            self._store.drop(state, entry)
            return True

    def purge(self, queue: str) -> int:
        """Remove every ready and delayed job of ``queue``."""
        return self._drop_all(queue, _PENDING)

    def purge_dead(self, queue: str) -> int:
        """Remove every dead letter of ``queue``."""
        return self._drop_all(queue, (JobState.DEAD,))

    def pause(self, queue: str) -> None:
        """Stop claims from ``queue``."""
        with self._cond:
            state = self._store.queue(validate_queue_name(queue))
            state.paused = state.listed = True

    def resume(self, queue: str) -> None:
        """Let claims take from ``queue`` again."""
        with self._cond:
            self._store.queue(validate_queue_name(queue)).paused = False
            self._cond.notify_all()

    def _drop_all(self, queue: str, states: tuple[JobState, ...]) -> int:
        with self._cond:
            self._store.tick()
            state = self._store.find(queue)
            if state is None:
                return 0
            doomed = [entry for entry in state.jobs.values() if entry.state in states]
            for entry in doomed:
                self._store.drop(state, entry)
            return len(doomed)


def _by_seq(entry: Entry) -> tuple[int, int]:
    return -entry.priority, entry.seq


def _newest_first(entry: Entry) -> float:
    return -(entry.finished_at or entry.enqueued_at).timestamp()


_ORDER: dict[JobState, Callable[[Entry], Any]] = {
    JobState.READY: _by_seq,
    JobState.DELAYED: lambda entry: (entry.run_at, entry.seq),
    JobState.ACTIVE: lambda entry: (entry.deadline, entry.seq),
    JobState.COMPLETED: _newest_first,
    JobState.CANCELLED: _newest_first,
}
