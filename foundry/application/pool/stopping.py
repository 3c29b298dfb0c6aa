"""Stopping the pool: warm (finish within grace, then kill and release), cold, or drained.

Owns the stop request and the grace period, and in burst mode decides when the queues are
drained. ``step`` says what the shutdown calls for now; the supervisor applies it to its
slots, buffer and settler, and says when it is ``finished``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

from foundry.application.pool.config import PoolConfig
from foundry.application.pool.slots import Slot
from foundry.domain import FoundryError
from foundry.ports import QueuePort

log = logging.getLogger(__name__)

#: How long to wait for a killed child to be gone before its job is released (seconds).
KILL_WAIT_S = 2.0
#: A burst worker waits this long (seconds) for delayed jobs to become ready (retries with a
#: short backoff) before it stops and leaves them.
BURST_HORIZON_S = 10.0


class Step(NamedTuple):
    """What a shutdown in progress calls for now."""

    begun: bool  # it starts now: release the prefetched jobs
    overdue: bool  # cold, or the grace is over: kill and release what runs, drop what waits
    grace_over: bool = False  # even a child's claim for the pool is not waited for


class Stopping:
    """Tracks a stop request; ``request`` only sets flags, so a signal handler may call it."""

    def __init__(self, config: PoolConfig, queue: QueuePort) -> None:
        self._grace = config.grace
        self._burst = config.burst
        self._queues = config.queues
        self._queue = queue
        self.requested = False
        self.cold = False
        self.active = False
        self.done = False
        self._grace_end = float("inf")
        self._empty_since: float | None = None  # burst: since when no job was ready
        self._looked = False  # burst: an idle claim came back empty since the last work
        self.left: Left | None = None  # burst: what it left behind when it stopped

    def request(self, *, cold: bool = False) -> None:
        """Stop claiming; ``cold`` kills running jobs at once (they are released)."""
        self.requested = True
        self.cold = self.cold or cold

    def got_work(self) -> None:
        """A claim brought jobs: the wait for delayed jobs counts again from the next empty
        claim (jobs a rate limit holds back are delayed, and a claim takes them as it
        releases them: they are never seen ready)."""
        self._empty_since = None
        self._looked = False

    @property
    def looks_first(self) -> bool:
        """Whether an idle pool's next claim only looks (waits for no job): a burst pool with
        nothing to run asks once without blocking, so it stops as soon as its queues are
        drained instead of after an ``idle_wait`` (a long one kept it for seconds after its
        last job). Later claims block as usual while delayed jobs keep it going."""
        return self._burst and not self._looked

    def check_drained(self, now: float, *, holding: bool, broken: Sequence[str] = ()) -> None:
        """In burst mode, stop once the pool holds no lease and runs no job (``holding``
        false), no job is ready in the queues it serves, and none became ready or was
        claimed for ``BURST_HORIZON_S`` while delayed jobs remain; say what is left (delayed
        jobs further ahead, paused queues' jobs, ``broken`` queues)."""
        if not self._burst:
            return
        self._looked = True
        if holding:
            return
        left = self._left(broken)
        if left is None:  # a job is ready, or the sizes could not be read
            self._empty_since = None
            return
        if self._empty_since is None:
            self._empty_since = now
        if left.delayed and now - self._empty_since < BURST_HORIZON_S:
            return
        if not self.requested:
            log.info("burst: the queues are drained; stopping%s", left.describe())
        self.requested, self.left = True, left

    def step(self, now: float, slots: Sequence[Slot]) -> Step | None:
        """What the shutdown calls for at ``now`` (``None``: no stop asked, or it is done)."""
        if not self.requested or self.done:
            return None
        begun = not self.active
        if begun:
            self._begin(now, sum(1 for slot in slots if slot.busy))
        grace_over = now >= self._grace_end
        return Step(begun=begun, overdue=self.cold or grace_over, grace_over=grace_over)

    def finished(self) -> None:
        """Nothing is held any more: the pool may exit."""
        self.done = True

    def next_wake(self) -> float:
        """When the grace period ends, if stopping."""
        return self._grace_end if self.active and not self.done else float("inf")

    def _begin(self, now: float, running: int) -> None:
        self.active = True
        self._grace_end = now + self._grace.total_seconds()
        log.info(
            "stopping%s: %s job(s) running, grace %s",
            " cold" if self.cold else "",
            running,
            self._grace,
        )

    def _left(self, broken: Sequence[str]) -> Left | None:
        """What the burst would leave behind, or ``None`` while a job is ready."""
        try:
            stats = [self._queue.stats(name) for name in self._queues if name not in broken]
        except FoundryError as error:
            log.error("cannot read queue sizes to end the burst: %s", error)
            return None
        if any(s.ready and not s.paused for s in stats):
            return None
        delayed = {s.queue: s.delayed for s in stats if s.delayed and not s.paused}
        paused = {s.queue: s.pending for s in stats if s.pending and s.paused}
        return Left(delayed, paused, tuple(broken))


class Left(NamedTuple):
    """The jobs a burst worker leaves: delayed (not due soon), in paused or broken queues."""

    delayed: dict[str, int]
    paused: dict[str, int]
    broken: tuple[str, ...]

    def describe(self) -> str:
        """``"; left: ..."``, or ``""`` when nothing is left."""
        parts = [f"{n} delayed in {queue}" for queue, n in self.delayed.items()]
        parts += [f"{n} in paused {queue}" for queue, n in self.paused.items()]
        parts += [f"{queue} (broken)" for queue in self.broken]
        return f"; left: {', '.join(parts)}" if parts else ""
