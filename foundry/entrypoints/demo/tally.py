"""What the demo saw: a ``PoolObserver`` that counts outcomes and feeds the progress bar."""

from __future__ import annotations

import math
import time
from collections import Counter
from datetime import datetime

from rich.progress import Progress, TaskID

from foundry.application.outcome import Outcome, OutcomeKind
from foundry.domain import RunNow
from foundry.ports import Lease

_REFRESH_EVERY_S = 0.1


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


class Tally:
    """Counts every attempt's outcome, per child too, and the enqueue-to-start latency.

    Only jobs in ``ours`` are counted, when given. Runs in the pool's parent. The progress
    bar is refreshed by hand (no refresh thread: the parent forks children and must not hold
    threads).
    """

    def __init__(
        self,
        progress: Progress | None = None,
        task: TaskID | None = None,
        ours: frozenset[str] | None = None,
    ) -> None:
        self._ours = ours
        self.outcomes: Counter[OutcomeKind] = Counter()
        self.dead_reasons: Counter[str] = Counter()
        self.per_child: Counter[int] = Counter()
        self.start_latency_ms: list[float] = []
        self.runtime_s: list[float] = []
        self._progress = progress
        self._task = task
        self._refreshed_at = 0.0

    def job_started(self, lease: Lease, child_pid: int, started_at: datetime) -> None:
        """A child took ``lease``'s job."""
        if not self._counts(lease):
            return
        self.per_child[child_pid] += 1
        job = lease.job
        if lease.attempt == 1 and isinstance(job.schedule, RunNow) and job.created_at:
            waited = (started_at - job.created_at).total_seconds() * 1000
            self.start_latency_ms.append(max(waited, 0.0))

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        """An attempt ended."""
        if not self._counts(lease):
            return
        self.outcomes[outcome.kind] += 1
        self.runtime_s.append(runtime_s)
        if outcome.kind is OutcomeKind.DEAD:
            self.dead_reasons[outcome.reason or "unknown"] += 1
        if outcome.kind in (OutcomeKind.COMPLETED, OutcomeKind.DEAD):
            self._advance()

    def child_recycled(self, child_pid: int, reason: str) -> None:
        """Not shown by the demo."""

    def leases_renewed(self, kept: int, lost: int) -> None:
        """Not shown by the demo."""

    def _counts(self, lease: Lease) -> bool:
        # A shared queue may hold jobs of an earlier, interrupted demo: run them, count ours.
        return self._ours is None or lease.job_id in self._ours

    def _advance(self) -> None:
        if self._progress is None or self._task is None:
            return
        self._progress.advance(self._task)
        now = time.monotonic()
        if now - self._refreshed_at >= _REFRESH_EVERY_S:
            self._refreshed_at = now
            self._progress.refresh()

    @property
    def finished(self) -> int:
        """Jobs that ended (completed or dead)."""
        return self.outcomes[OutcomeKind.COMPLETED] + self.outcomes[OutcomeKind.DEAD]
