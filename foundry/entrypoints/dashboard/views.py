"""What the pages and the JSON API show and do, through the ports only.

Input from the request is checked with ``values`` (queue names, job ids, numbers, raising
``BadInput``); the ports' own errors pass through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from foundry.domain import ErrorInfo, Job, JobState, Progress, QueueBroken
from foundry.entrypoints.dashboard.errors import Changed, NotFound
from foundry.entrypoints.dashboard.history import Sampler, Snapshot
from foundry.entrypoints.dashboard.values import iso, job_id, job_state, queue_name, seconds
from foundry.entrypoints.overview import read_stats
from foundry.ports import (
    Clock,
    DeadLetter,
    JobRecord,
    QueuePort,
    QueueStats,
    WorkerInfo,
    WorkerRegistry,
)

if TYPE_CHECKING:
    from foundry.entrypoints.dashboard.batch_views import BatchViews
    from foundry.entrypoints.dashboard.schedule_views import ScheduleViews

#: The dead letters page reads at most this many of each queue's newest letters.
DEAD_SCAN = 500
MAX_PAGE = 500


@attrs.frozen
class JobList:
    """One page of a queue's jobs in one state."""

    queue: str
    state: JobState
    records: tuple[JobRecord, ...]
    offset: int
    limit: int


@attrs.frozen
class Letter:
    """A dead letter with what the page filters and shows."""

    letter: DeadLetter
    error_type: str
    error_message: str


@attrs.frozen
class DeadPage:
    """One page of dead letters after filtering, and what the filters offer."""

    letters: tuple[Letter, ...]
    matched: int
    offset: int
    limit: int
    error_types: tuple[str, ...]
    scanned_all: bool
    broken: tuple[QueueBroken, ...] = ()  # queues whose data the backend refuses to read


def last_error(errors: Sequence[ErrorInfo]) -> ErrorInfo | None:
    """The most recent error of a history, if any."""
    return errors[-1] if errors else None


class Views:
    """The dashboard's reads and actions over the ports."""

    def __init__(
        self,
        queue: QueuePort,
        workers: WorkerRegistry,
        clock: Clock,
        sampler: Sampler,
        schedules: ScheduleViews,
        *,
        batches: BatchViews,
    ) -> None:
        self.queue = queue
        self.workers = workers
        self.clock = clock
        self.sampler = sampler
        self.schedules = schedules
        self.batches = batches

    # -- reads --------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Every queue's stats and oldest wait (shared by all open pages)."""
        return self.sampler.snapshot()

    def queue_row(self, name: str) -> tuple[QueueStats, timedelta | None]:
        """One queue's stats and wait, read now."""
        name = queue_name(name)
        return self.queue.stats(name), self.queue.oldest_ready_age([name])[0]

    def jobs(self, raw_queue: str, raw_state: str | None, offset: int, limit: int) -> JobList:
        """A page of one queue's jobs in one state (ready when not named)."""
        name = queue_name(raw_queue)
        state = job_state(raw_state or "ready")
        records = self.queue.jobs(name, state, offset=offset, limit=limit)
        return JobList(name, state, tuple(records), offset, limit)

    def running(self, workers: Sequence[WorkerInfo]) -> dict[str, list[JobRecord]]:
        """The active jobs of each worker, by worker id: the served queues' counts in one
        call, then one listing per queue running jobs (a queue whose data is broken is left
        out: the queues page names it)."""
        names = sorted({queue for info in workers for queue in info.queues})
        held: dict[str, list[JobRecord]] = {info.id: [] for info in workers}
        rows, _ = read_stats(self.queue, names) if names else ([], [])
        for name in [row.queue for row in rows if row.active]:
            for record in self.queue.jobs(name, JobState.ACTIVE, limit=MAX_PAGE):
                if record.worker in held:
                    held[record.worker].append(record)
        return held

    def job(self, raw_id: str, raw_queue: str | None) -> JobRecord | None:
        """A job's record, searched in every queue unless one is named."""
        where = queue_name(raw_queue) if raw_queue else None
        return self.queue.get(job_id(raw_id), where)

    def dead(
        self, raw_queue: str | None, error_type: str | None, offset: int, limit: int
    ) -> DeadPage:
        """Dead letters, newest first, of one queue or all, filtered by error type. The
        queues' counts are read first (one call), so only queues holding letters are read,
        and a queue whose data is broken is named apart (raised when it is the one asked)."""
        names = [queue_name(raw_queue)] if raw_queue else self.queue.queues()
        rows, broken = read_stats(self.queue, names)
        if raw_queue and broken:
            raise broken[0]
        holding = [row for row in rows if row.dead]
        letters = [
            as_letter(letter)
            for row in holding
            for letter in self.queue.dead(row.queue, limit=DEAD_SCAN)
        ]
        letters.sort(key=lambda item: item.letter.died_at, reverse=True)
        types = tuple(sorted({item.error_type for item in letters if item.error_type}))
        wanted = (error_type or "").strip().lower()
        if wanted:
            letters = [item for item in letters if wanted in item.error_type.lower()]
        scanned_all = all(row.dead <= DEAD_SCAN for row in holding)
        chosen = tuple(letters[offset : offset + limit])
        return DeadPage(chosen, len(letters), offset, limit, types, scanned_all, tuple(broken))

    # -- actions ------------------------------------------------------------------------------

    def pause(self, raw_queue: str, paused: bool, *, create: bool = False) -> None:
        """Pause or resume a queue. Pausing one that never held a job (a typo, most likely)
        is ``NotFound`` unless ``create`` (to pause it ahead of its first job); resuming one
        is ``NotFound``."""
        name = queue_name(raw_queue)
        if paused and not create:
            self._known(name)
        elif not paused and (unknown := self.unknown(name)) is not None:
            raise NotFound(f"{unknown}; check the name")
        if paused:
            self.queue.pause(name)
        else:
            self.queue.resume(name)
        self.sampler.invalidate()

    def _known(self, name: str) -> None:
        unknown = self.unknown(name)
        if unknown is not None:
            raise NotFound(
                f'{unknown}; check the name, or send {{"create": true}} to pause it ahead '
                "of its first job"
            )

    def unknown(self, name: str) -> str | None:
        """That ``name`` never held a job nor was paused (a typo, most likely), naming the
        known queues; ``None`` for a known queue."""
        known = self.queue.queues()
        if name in known:
            return None
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
        return f"queue {name!r} has never held a job (known: {shown or 'none'})"

    def purge(self, raw_queue: str) -> int:
        """Remove every pending job of a queue."""
        removed = self.queue.purge(queue_name(raw_queue))
        self.sampler.invalidate()
        return removed

    def retry_dead(self, raw_queue: str, raw_ids: Sequence[str] | None) -> int:
        """Requeue the named dead letters of a queue (all of them for ``None``)."""
        name = queue_name(raw_queue)
        ids = None if raw_ids is None else [job_id(raw) for raw in raw_ids]
        count = self.queue.requeue_dead(name, ids)
        self.sampler.invalidate()
        return count

    def forget_dead(self, raw_queue: str, raw_ids: Sequence[str]) -> tuple[int, list[str]]:
        """Delete the named dead letters; how many, and the ids that were not dead letters
        (a letter requeued since the page showed it is pending again, and stays)."""
        name = queue_name(raw_queue)
        # All checked before any is deleted; an id sent twice is one letter, forgotten once.
        ids = list(dict.fromkeys(job_id(raw) for raw in raw_ids))
        missing = [one for one in ids if not self.queue.delete_dead(name, one)]
        self.sampler.invalidate()
        return len(ids) - len(missing), missing

    def purge_dead(self, raw_queue: str) -> int:
        """Remove every dead letter of a queue."""
        removed = self.queue.purge_dead(queue_name(raw_queue))
        self.sampler.invalidate()
        return removed

    def delete_pending(self, raw_queue: str, raw_id: str) -> bool:
        """Delete one job the page showed pending; ``Changed`` if it has started or ended
        since (a dead letter is not deleted by a button that said "pending")."""
        name, one = queue_name(raw_queue), job_id(raw_id)
        if self.queue.delete_pending(name, one):  # checked and deleted in one step
            self.sampler.invalidate()
            return True
        record = self.queue.get(one, name)  # only to say why nothing was deleted
        if record is not None:
            raise Changed(
                f"job {one} is {record.state.value} now (it was pending when the page was "
                "drawn), so it was left as it is; reload the page"
            )
        return False

    def cancel(self, raw_id: str, raw_queue: str | None, reason: str) -> JobState | None:
        """Cancel a job (see ``QueuePort.cancel``): its state after, ``None`` if unknown."""
        where = queue_name(raw_queue) if raw_queue else None
        state = self.queue.cancel(job_id(raw_id), where, reason)
        self.sampler.invalidate()
        return state

    def delete(self, raw_queue: str, raw_id: str) -> bool:
        """Delete one pending or dead job."""
        deleted = self.queue.delete(queue_name(raw_queue), job_id(raw_id))
        self.sampler.invalidate()
        return deleted


def as_letter(letter: DeadLetter) -> Letter:
    """A dead letter with its last error's type and message, as pages and JSON show it."""
    error = last_error(letter.errors)
    return Letter(letter, error.type if error else "", error.message if error else "")


# -- JSON shapes ------------------------------------------------------------------------------


def stats_json(row: QueueStats, age: timedelta | None) -> dict[str, Any]:
    """One queue's stats as JSON."""
    return {**attrs.asdict(row), "oldest_ready_age_s": seconds(age)}


def error_json(error: ErrorInfo) -> dict[str, Any]:
    """One error of a history as JSON."""
    return {**attrs.asdict(error, recurse=False), "at": iso(error.at), "mro": list(error.mro)}


def job_json(job: Job) -> dict[str, Any]:
    """What a job is, as JSON (no internal settings)."""
    return {
        "id": job.id,
        "name": job.name,
        "queue": job.queue,
        "payload": job.payload,
        "priority": job.priority,
        "max_attempts": job.max_attempts,
        "timeout_s": job.timeout.total_seconds(),
        "created_at": iso(job.created_at),
        "metadata": job.metadata,
        "after": list(job.after),
        "after_failure": job.after_failure.value,
    }


def record_json(record: JobRecord) -> dict[str, Any]:
    """A job's record as JSON."""
    return {
        "worker": record.worker,
        "job": job_json(record.job),
        "state": record.state.value,
        "attempts": record.attempts,
        "enqueued_at": iso(record.enqueued_at),
        "run_at": iso(record.run_at),
        "lease_deadline": iso(record.lease_deadline),
        "finished_at": iso(record.finished_at),
        "reason": record.reason,
        "result": record.result,
        "progress": progress_json(record.progress),
        "errors": [error_json(error) for error in record.errors],
    }


def progress_json(progress: Progress | None) -> dict[str, Any] | None:
    """The last progress a running job's handler reported, if any."""
    if progress is None:
        return None
    return {"fraction": progress.fraction, "note": progress.note}


def worker_json(info: WorkerInfo, running: Sequence[JobRecord] | None = None) -> dict[str, Any]:
    """A live worker as JSON, with the jobs it holds now when they are given."""
    shown = {
        **attrs.asdict(info, recurse=False),
        "queues": list(info.queues),
        "started_at": iso(info.started_at),
        "seen_at": iso(info.seen_at),
    }
    if running is not None:
        shown["running"] = [
            {"id": r.job.id, "name": r.job.name, "queue": r.job.queue} for r in running
        ]
    return shown


def letter_json(item: Letter) -> dict[str, Any]:
    """A dead letter as JSON."""
    letter = item.letter
    return {
        "job": job_json(letter.job),
        "reason": letter.reason,
        "attempts": letter.attempts,
        "died_at": iso(letter.died_at),
        "error_type": item.error_type,
        "error_message": item.error_message,
        "errors": [error_json(error) for error in letter.errors],
    }
