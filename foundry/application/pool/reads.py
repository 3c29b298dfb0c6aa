"""When the parent reads its children's answers: as each comes, or several in one wake-up.

While every child runs a job and holds the next one queued, no answer needs the parent at
once: the child starts its queued job itself as it answers. The parent then sleeps through
the answers (children's exits, signals and its timers still wake it) until a child could be
about to run out of work, and reads every answer that came in one turn: one wake-up for
several jobs, not one per job. It does so only while the recent jobs ran for about the same
time, and for short jobs only (``STEADY_MAX_S``), so a child whose jobs end sooner than
expected waits little for its next one, and no result waits long to be written.

Owns only the recent run times; the slots are the supervisor's, read as they are.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from foundry.application.pool.slots import Slot, SlotState

#: How many of the latest run times tell how long the next jobs run.
RECENT = 8
#: Answers are gathered only while the typical recent run time (their median) is at most
#: this many times the shortest: a child's running job and the one it holds queued then run
#: for longer, together, than the parent waits after the first was expected to end,
STEADY_RATIO = 1.4
#: and while the shortest is at least ``STEADY_MIN_S`` (shorter jobs end faster than a timed
#: sleep could gather their answers) and the typical one at most ``STEADY_MAX_S`` (seconds:
#: a long job's answer is one wake-up among many, and its result should not wait).
STEADY_MIN_S = 0.002
STEADY_MAX_S = 0.05
#: How long after a child's running job was expected to end its answer may wait, as a share
#: of the shortest recent run time (the child's queued job, started then, runs for longer).
LATE_SHARE = 0.6


class Reads:
    """Decides by when the children's answers must be read."""

    def __init__(self) -> None:
        self._recent: deque[float] = deque(maxlen=RECENT)

    def ran(self, runtime_s: float) -> None:
        """A child answered about a job that ran for ``runtime_s``."""
        self._recent.append(runtime_s)

    def read_by(self, slots: Sequence[Slot], now: float) -> float:
        """When the children's answers must be read: ``now`` (as each comes) unless every
        child runs a job and holds the next queued, and the recent jobs ran for about the
        same time; then the earliest moment a child's running job was expected to end (its
        start plus the typical recent run time), plus ``LATE_SHARE`` of the shortest. That
        is at most ``(1 + LATE_SHARE) * STEADY_MAX_S`` after the earliest start."""
        recent = self._recent
        if len(recent) < RECENT:
            return now
        ordered = sorted(recent)
        shortest, typical = ordered[0], ordered[RECENT // 2]
        if shortest < STEADY_MIN_S or typical > min(STEADY_MAX_S, STEADY_RATIO * shortest):
            return now
        started = float("inf")
        for slot in slots:
            job, queued = slot.job, slot.queued
            if slot.state is not SlotState.BUSY or job is None or queued is None:
                return now
            if job.stop is not None or queued.stop is not None or job.term_at is not None:
                return now
            started = min(started, job.started)
        by = started + typical + LATE_SHARE * shortest
        return by if by > now else now
