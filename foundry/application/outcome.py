"""How one attempt ended, as the pool reports it to an observer (progress bars, summaries)."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import attrs

from foundry.domain import ErrorInfo
from foundry.ports import Lease


class OutcomeKind(enum.StrEnum):
    """What the pool did with a claimed job."""

    COMPLETED = "completed"
    RETRIED = "retried"
    DEAD = "dead"
    RELEASED = "released"
    ABANDONED = "abandoned"
    CANCELLED = "cancelled"


@attrs.frozen
class Outcome:
    """The end of one attempt.

    * ``COMPLETED``: the handler returned; the job is done.
    * ``RETRIED``: the attempt failed (``error``); the job runs again after ``delay``.
    * ``DEAD``: the attempt failed and the job went to the dead letters with ``reason``.
    * ``RELEASED``: given back unrun or unfinished (shutdown); the attempt was not spent.
    * ``ABANDONED``: the pool gave the attempt up without the queue taking a write of its
      end (``reason``: fenced, lease lost, stale lease). The queue returns the job when its
      lease lapses, unless a write of its end sent earlier and never confirmed was applied
      after all: then the job ended as that write said. The reason says when that may be
      so (a re-send refused as stale, a write still unconfirmed at a stop). Either way the
      job is not lost.
    * ``CANCELLED``: a cancel stopped the job (``reason``); it does not run again.
    """

    kind: OutcomeKind
    delay: timedelta | None = None
    reason: str | None = None
    error: ErrorInfo | None = None

    @classmethod
    def completed(cls) -> Outcome:
        """The handler returned."""
        return _COMPLETED

    @classmethod
    def retried(cls, delay: timedelta, error: ErrorInfo) -> Outcome:
        """Failed; runs again after ``delay``."""
        return cls(OutcomeKind.RETRIED, delay=delay, error=error)

    @classmethod
    def dead(cls, reason: str, error: ErrorInfo | None) -> Outcome:
        """Failed for good."""
        return cls(OutcomeKind.DEAD, reason=reason, error=error)

    @classmethod
    def cancelled(cls, reason: str, error: ErrorInfo | None) -> Outcome:
        """Stopped by a cancel; never runs again."""
        return cls(OutcomeKind.CANCELLED, reason=reason, error=error)

    @classmethod
    def released(cls) -> Outcome:
        """Given back without spending the attempt."""
        return _RELEASED

    @classmethod
    def abandoned(cls, reason: str) -> Outcome:
        """The pool gave the attempt up (``reason``); see ``OutcomeKind.ABANDONED``."""
        return cls(OutcomeKind.ABANDONED, reason=reason)


_COMPLETED = Outcome(OutcomeKind.COMPLETED)
_RELEASED = Outcome(OutcomeKind.RELEASED)


@runtime_checkable
class PoolObserver(Protocol):
    """Receives the pool's job and child events, in the parent process, on the pool's loop.

    Keep these cheap: they run between jobs. An exception raised here is logged and ignored.
    """

    def job_started(self, lease: Lease, child_pid: int, started_at: datetime) -> None:
        """``lease``'s job was handed to child ``child_pid`` at ``started_at`` (clock time)."""
        ...

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        """``lease``'s attempt ended with ``outcome`` after ``runtime_s`` seconds in a child."""
        ...

    def child_recycled(self, child_pid: int, reason: str) -> None:
        """Child ``child_pid`` is replaced after its job for reaching a limit: ``reason`` is
        ``"max tasks"`` or ``"RSS <n> MiB"``."""
        ...

    def leases_renewed(self, kept: int, lost: int) -> None:
        """A batched renew kept ``kept`` leases; the queue no longer held ``lost`` of them.
        Each lost lease's attempt is reported by ``job_finished``: abandoned, or, when a write
        of its end waits for the queue's answer, later, with that write's outcome."""
        ...
