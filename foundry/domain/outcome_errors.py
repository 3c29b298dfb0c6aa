"""What waiting for a job's result may raise instead of returning it."""

from __future__ import annotations

from foundry.domain.error_info import ErrorInfo
from foundry.domain.errors import FoundryError


class JobFailed(FoundryError):
    """The job went dead: ``reason`` says why, ``errors`` is its error history (oldest first)."""

    def __init__(self, job_id: str, reason: str, errors: tuple[ErrorInfo, ...] = ()) -> None:
        self.job_id = job_id
        self.reason = reason
        self.errors = errors
        last = f"; last error {errors[-1].type}: {errors[-1].message}" if errors else ""
        super().__init__(
            f"job {job_id!r} is dead ({reason}) after {len(errors)} error(s){last}; "
            "`foundry failed show` prints its history, `foundry failed retry` runs it again"
        )


class JobCancelled(FoundryError):
    """The job was cancelled before it completed; it will not run."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        why = "" if reason == "cancelled" else f" ({reason})"  # the default reason says no more
        super().__init__(f"job {job_id!r} was cancelled{why}; it has no result")


class ResultTimeout(FoundryError, TimeoutError):
    """The job did not end within the time given; it may still end later."""

    def __init__(self, job_id: str, state: str, seconds: float) -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(
            f"job {job_id!r} is still {state} after waiting {seconds:g} s; wait longer "
            "(timeout=) or check its workers with `foundry stats`"
        )


class BatchTimeout(ResultTimeout):
    """Jobs of the batch had not ended within the time given; they may still end later.

    ``pending`` names some of them (id and state, the first in the batch's order), ``left``
    says how many there were in all."""

    def __init__(
        self, batch_id: str, pending: tuple[tuple[str, str], ...], left: int, seconds: float
    ) -> None:
        first, state = pending[0]
        super().__init__(first, state, seconds)
        self.batch_id = batch_id
        self.pending = pending
        self.left = left
        named = ", ".join(f"{job_id!r} ({state})" for job_id, state in pending)
        more = f" and {left - len(pending)} more" if left > len(pending) else ""
        self.args = (
            f"batch {batch_id!r} still has {left} job(s) pending after waiting {seconds:g} s: "
            f"{named}{more}; wait longer (timeout=) or check it with "
            f"`foundry batch show {batch_id}`",
        )
