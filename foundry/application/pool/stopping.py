"""Stopping the pool: warm (finish within grace, then kill and release), cold, or drained.

Owns the stop request and the grace period, and in burst mode decides when the queues are
drained. ``step`` says what the shutdown calls for now; the supervisor applies it to its
slots, buffer and settler, and says when it is ``finished``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from loguru import logger

from foundry.application.pool.config import PoolConfig
from foundry.application.pool.slots import Slot
from foundry.domain import FoundryError
from foundry.ports import QueuePort

#: How long to wait for a killed child to be gone before its job is released (seconds).
KILL_WAIT_S = 2.0


@attrs.frozen
class Step:
    """What a shutdown in progress calls for now."""

    begun: bool  # it starts now: release the prefetched jobs
    overdue: bool  # cold, or the grace is over: kill and release what runs, drop what waits


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

    def request(self, *, cold: bool = False) -> None:
        """Stop claiming; ``cold`` kills running jobs at once (they are released)."""
        self.requested = True
        self.cold = self.cold or cold

    def check_drained(self, *, holding: bool) -> None:
        """In burst mode, stop once the pool holds no lease and runs no job (``holding``
        false) and no job is ready or delayed in the queues (paused queues aside)."""
        if not self._burst or holding or not self._drained():
            return
        if not self.requested:
            logger.info("burst: the queues are drained; stopping")
        self.requested = True

    def step(self, now: float, slots: Sequence[Slot]) -> Step | None:
        """What the shutdown calls for at ``now`` (``None``: no stop asked, or it is done)."""
        if not self.requested or self.done:
            return None
        begun = not self.active
        if begun:
            self._begin(now, sum(1 for slot in slots if slot.busy))
        return Step(begun=begun, overdue=self.cold or now >= self._grace_end)

    def finished(self) -> None:
        """Nothing is held any more: the pool may exit."""
        self.done = True

    def next_wake(self) -> float:
        """When the grace period ends, if stopping."""
        return self._grace_end if self.active and not self.done else float("inf")

    def _begin(self, now: float, running: int) -> None:
        self.active = True
        self._grace_end = now + self._grace.total_seconds()
        logger.info(
            "stopping{}: {} job(s) running, grace {}",
            " cold" if self.cold else "",
            running,
            self._grace,
        )

    def _drained(self) -> bool:
        try:
            stats = [self._queue.stats(name) for name in self._queues]
        except FoundryError as error:
            logger.error("cannot read queue sizes to end the burst: {}", error)
            return False
        return all(s.pending == 0 or s.paused for s in stats)
