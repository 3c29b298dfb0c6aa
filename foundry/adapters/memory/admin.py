"""Inspection and administration of the memory queue: get, stats, dead letters, pause."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from foundry.adapters.memory.base import MemoryQueueBase
from foundry.adapters.memory.store import Entry, QueueState
from foundry.domain import JobState, validate_queue_name
from foundry.ports import DeadLetter, JobRecord, QueueStats, WorkerInfo

_PENDING = (JobState.READY, JobState.DELAYED)
_DELETABLE = (JobState.READY, JobState.DELAYED, JobState.DEAD)


class MemoryQueueAdmin(MemoryQueueBase):
    """The inspection, admin and worker-registry half of ``MemoryQueue``."""

    def get(self, job_id: str, queue: str | None = None) -> JobRecord | None:
        """The job's record; searches every queue when ``queue`` is None."""
        with self._cond:
            now = self._tick()
            names = [queue] if queue is not None else sorted(self._queues)
            for name in names:
                state = self._queues.get(name)
                entry = self._promoted(state, now).jobs.get(job_id) if state else None
                if entry is not None:
                    return self._record(entry)
            return None

    def stats(self, queue: str) -> QueueStats:
        """Sizes and totals of ``queue``; O(1)."""
        with self._cond:
            now = self._tick()
            state = self._queues.get(queue)
            if state is None:
                return QueueStats(queue)
            counts = self._promoted(state, now).counts
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
            )

    def queues(self) -> list[str]:
        """Every queue that has held a job, sorted."""
        with self._cond:
            return sorted(name for name, state in self._queues.items() if state.seq > 0)

    def oldest_ready_age(self, queues: Sequence[str]) -> list[timedelta | None]:
        """Scans each queue's jobs (a fake's cost): per priority, the ready job next in line
        has waited since its run time (when it last became ready)."""
        with self._cond:
            now = self._tick()
            return [self._oldest_ready_age(name, now) for name in queues]

    def _oldest_ready_age(self, queue: str, now: datetime) -> timedelta | None:
        state = self._queues.get(validate_queue_name(queue))
        if state is None:
            return None
        heads: dict[int, Entry] = {}
        for entry in self._promoted(state, now).jobs.values():
            head = heads.get(entry.priority)
            if entry.state is JobState.READY and (head is None or entry.seq < head.seq):
                heads[entry.priority] = entry
        if not heads:
            return None
        return max(now - min(entry.run_at for entry in heads.values()), timedelta(0))

    def dead(self, queue: str, *, offset: int = 0, limit: int = 100) -> list[DeadLetter]:
        """Dead letters of ``queue``, newest first."""
        with self._cond:
            self._tick()
            state = self._queues.get(queue)
            if state is None or limit <= 0:
                return []
            newest_first = list(reversed(state.dead))[max(offset, 0) : max(offset, 0) + limit]
            return [self._letter(state.jobs[job_id]) for job_id in newest_first]

    def requeue_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """Dead letters back to ready, oldest first, each with a new seq and 0 attempts."""
        with self._cond:
            now = self._tick()
            state = self._queues.get(queue)
            if state is None:
                return 0
            chosen = list(state.dead) if job_ids is None else list(dict.fromkeys(job_ids))
            count = 0
            for job_id in chosen:
                entry = state.jobs.get(job_id)
                if entry is not None and entry.state is JobState.DEAD:
                    self._requeue(state, entry, now)
                    count += 1
            if count:
                self._cond.notify_all()
            return count

    def delete(self, queue: str, job_id: str) -> bool:
        """Remove a pending or dead job; False if unknown, running or completed."""
        with self._cond:
            now = self._tick()
            state = self._queues.get(queue)
            entry = self._promoted(state, now).jobs.get(job_id) if state else None
            if state is None or entry is None or entry.state not in _DELETABLE:
                return False
            self._drop(state, entry)
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
            self._queue(validate_queue_name(queue)).paused = True

    def resume(self, queue: str) -> None:
        """Let claims take from ``queue`` again."""
        with self._cond:
            self._queue(validate_queue_name(queue)).paused = False
            self._cond.notify_all()

    # -- worker registry ----------------------------------------------------------------------

    def heartbeat(self, info: WorkerInfo, ttl: timedelta) -> None:
        """Publish ``info`` until now + ``ttl``."""
        with self._cond:
            self._workers[info.id] = (info, self._clock.now() + ttl)

    def workers(self) -> list[WorkerInfo]:
        """Workers whose heartbeat has not expired, by id."""
        with self._cond:
            now = self._clock.now()
            for worker_id, (_, expires_at) in list(self._workers.items()):
                if expires_at <= now:
                    del self._workers[worker_id]
            return [self._workers[worker_id][0] for worker_id in sorted(self._workers)]

    def forget_worker(self, worker_id: str) -> None:
        """Remove a worker now."""
        with self._cond:
            self._workers.pop(worker_id, None)

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _promoted(state: QueueState, now: datetime) -> QueueState:
        state.promote(now)
        return state

    def _requeue(self, state: QueueState, entry: Entry, now: datetime) -> None:
        entry.attempts = 0
        entry.reason = None
        entry.finished_at = None
        entry.seq = state.next_seq()
        state.schedule(entry, now, now)

    def _drop(self, state: QueueState, entry: Entry) -> None:
        self._unique.release(entry)
        state.remove(entry)

    def _drop_all(self, queue: str, states: tuple[JobState, ...]) -> int:
        with self._cond:
            self._tick()
            state = self._queues.get(queue)
            if state is None:
                return 0
            doomed = [entry for entry in state.jobs.values() if entry.state in states]
            for entry in doomed:
                self._drop(state, entry)
            return len(doomed)
