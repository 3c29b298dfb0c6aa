"""The life of a job: the states and the only transitions between them."""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    """Where a job is. Transitions are the only way state changes."""

    READY = "ready"
    DELAYED = "delayed"
    WAITING = "waiting"  # for the jobs named in its ``after`` to complete
    ACTIVE = "active"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """Completed, dead and cancelled jobs never run again (unless requeued by an admin)."""
        return self in _FINAL

    def can_become(self, target: JobState) -> bool:
        """Whether ``self -> target`` is a legal transition."""
        return target in _TRANSITIONS[self]

    def on_cancel(self) -> JobState:
        """The state a cancel leaves: a pending job is cancelled at once; a running job stays
        active, asked to stop (see ``after_stop``); an ended job is left as it is."""
        if self in (JobState.READY, JobState.DELAYED, JobState.WAITING):
            return JobState.CANCELLED
        return self

    def after_stop(self, meant: JobState) -> JobState:
        """Where a running job that a cancel asked to stop goes instead of ``meant``: it never
        runs again, so a retry, a release or a lost lease end it cancelled; a completion or a
        death stands."""
        if self is JobState.ACTIVE and meant in (JobState.READY, JobState.DELAYED):
            return JobState.CANCELLED
        return meant

    def become(self, target: JobState) -> JobState:
        """Return ``target`` if the transition is legal, else raise ``ValueError``."""
        if not self.can_become(target):
            raise ValueError(f"a {self.value} job cannot become {target.value}")
        return target


_FINAL = frozenset({JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED})

_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # enqueue puts a job in READY or DELAYED; cancel (or delete) ends a pending job.
    JobState.READY: frozenset({JobState.ACTIVE, JobState.CANCELLED}),
    JobState.DELAYED: frozenset({JobState.READY, JobState.CANCELLED}),
    # its last dependency completed (or failed: dead, or run anyway), or it was cancelled.
    JobState.WAITING: frozenset(
        {JobState.READY, JobState.DELAYED, JobState.DEAD, JobState.CANCELLED}
    ),
    # complete, fail (retry later / now / give up), release, lease lost, stopped by a cancel.
    JobState.ACTIVE: frozenset(
        {JobState.COMPLETED, JobState.DELAYED, JobState.READY, JobState.DEAD, JobState.CANCELLED}
    ),
    JobState.COMPLETED: frozenset(),
    # an admin requeues a dead letter, or deletes it.
    JobState.DEAD: frozenset({JobState.READY, JobState.CANCELLED}),
    JobState.CANCELLED: frozenset(),
}
