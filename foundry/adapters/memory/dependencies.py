"""Jobs waiting for others in the memory queue (``Job.after``): who waits for whom, how many
each still waits for, and what the end of a job does to the jobs waiting for it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from foundry.adapters.memory.store import Entry, QueueState
from foundry.domain import AfterFailure, ErrorInfo, InvalidJob, Job, JobState

#: Ends a job with a reason (the dead letters' ``bury``, the store's ``cancelled``).
End = Callable[[QueueState, Entry, str, datetime], None]

_FAILED = (JobState.DEAD, JobState.CANCELLED)
_REASON = "dependency failed"


def check_known(
    state: QueueState, jobs: Sequence[Job], known: Callable[[str], bool] = lambda _: False
) -> None:
    """Refuse (before any write) a job waiting for one its queue does not hold, unless that
    one comes earlier in ``jobs`` or is ``known`` (a batch)."""
    earlier: set[str] = set()
    for job in jobs:
        for dep in job.after:
            if dep not in earlier and dep not in state.jobs and not known(dep):
                raise InvalidJob(
                    "after",
                    f"job {dep!r} is not in queue {job.queue!r}; a job can wait only for jobs "
                    "of its own queue enqueued before it (or earlier in the same batch)",
                )
        earlier.add(job.id)


class Dependencies:
    """The waiting jobs of every queue; ``bury`` is set once the dead letters exist."""

    def __init__(self, wake: Callable[[], None], cancel: End) -> None:
        self.bury: End | None = None
        #: The state a batch id stands for as a dependency (``WAITING`` while it runs,
        #: ``COMPLETED`` or ``CANCELLED`` once it ended), ``None`` for no batch; set by the
        #: batches.
        self.batch_state: Callable[[QueueState, str], JobState | None] = lambda _, __: None
        self._wake = wake
        self._cancel = cancel

    def wait(self, state: QueueState, entry: Entry, job: Job, now: datetime) -> bool:
        """Make the new ``entry`` wait for ``job.after``; whether it waits (or has ended)."""
        rule = job.after_failure
        pending = []
        for dep in job.after:
            other = state.jobs.get(dep)
            seen = other.state if other is not None else self.batch_state(state, dep)
            if seen in _FAILED and rule is not AfterFailure.RUN:
                state.jobs[entry.job_id] = entry
                state.counts[entry.state] += 1
                self._fail(state, entry, rule, dep, now)
                return True
            if seen is not None and seen not in (JobState.COMPLETED, *_FAILED):
                pending.append(dep)
        if not pending:
            return False
        entry.state = JobState.WAITING
        state.jobs[entry.job_id] = entry
        state.counts[JobState.WAITING] += 1
        state.waiting[entry.job_id] = (len(pending), rule)
        for dep in pending:
            state.dependants.setdefault(dep, []).append(entry.job_id)
        return True

    def ended(self, state: QueueState, entry: Entry, failed: bool, now: datetime) -> None:
        """``entry``'s job ended (completed, or ``failed``: dead, cancelled, deleted)."""
        self.ended_id(state, entry.job_id, failed, now)

    def ended_id(self, state: QueueState, job_id: str, failed: bool, now: datetime) -> None:
        """The job or batch ``job_id`` ended (completed, or ``failed``)."""
        state.waiting.pop(job_id, None)
        for waiting_id in state.dependants.pop(job_id, []):
            waiter = state.jobs.get(waiting_id)
            count, rule = state.waiting.get(waiting_id, (0, AfterFailure.DEAD))
            if waiter is None or waiter.state is not JobState.WAITING:
                continue
            if failed and rule is not AfterFailure.RUN:
                self._fail(state, waiter, rule, job_id, now)
            elif count <= 1:
                del state.waiting[waiting_id]
                state.schedule(waiter, max(waiter.run_at, now), now)
                self._wake()
            else:
                state.waiting[waiting_id] = (count - 1, rule)

    def _fail(
        self, state: QueueState, entry: Entry, rule: AfterFailure, dep: str, now: datetime
    ) -> None:
        if rule is AfterFailure.CANCEL:
            self._cancel(state, entry, _REASON, now)
            return
        assert self.bury is not None
        message = f"job {dep} it waits for did not complete (dead, cancelled or deleted)"
        entry.errors.append(ErrorInfo("DependencyFailed", message, at=now))
        self.bury(state, entry, _REASON, now)
