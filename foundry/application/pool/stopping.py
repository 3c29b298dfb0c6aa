"""Stopping the pool: warm (finish within grace, then kill and release), cold, or drained."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from foundry.application.pool.slots import SlotState

if TYPE_CHECKING:
    from foundry.application.pool.supervisor import Supervisor

#: How long to wait for a killed child to be gone before its job is released (seconds).
KILL_WAIT_S = 2.0


class Stopping:
    """Tracks a stop request; ``request`` only sets flags, so a signal handler may call it."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor
        self.requested = False
        self.cold = False
        self.active = False
        self.done = False
        self._grace_end = float("inf")

    def request(self, *, cold: bool = False) -> None:
        """Stop claiming; ``cold`` kills running jobs at once (they are released)."""
        self.requested = True
        self.cold = self.cold or cold

    def drained(self) -> None:
        """Burst mode found nothing left to run."""
        if not self.requested:
            logger.info("burst: the queues are drained; stopping")
        self.requested = True

    def tick(self, now: float) -> None:
        """Move the shutdown along: begin, kill overdue jobs, finish when nothing is held."""
        if not self.requested or self.done:
            return
        if not self.active:
            self._begin(now)
        sup = self._sup
        overdue = self.cold or now >= self._grace_end
        if overdue:
            self._kill_and_release()
            for pending in list(sup.settler.outbox):
                sup.settler.abandon(pending.lease, "shutdown: the queue was unreachable")
        sup.settler.flush()
        if not any(slot.busy for slot in sup.slots) and not sup.settler.outbox:
            self.done = True

    def next_wake(self) -> float:
        """When the grace period ends, if stopping."""
        return self._grace_end if self.active and not self.done else float("inf")

    def _begin(self, now: float) -> None:
        sup = self._sup
        self.active = True
        self._grace_end = now + sup.config.grace.total_seconds()
        running = sum(1 for slot in sup.slots if slot.busy)
        logger.info(
            "stopping{}: {} job(s) running, grace {}",
            " cold" if self.cold else "",
            running,
            sup.config.grace,
        )
        while sup.buffer:
            sup.settler.release(sup.buffer.popleft())

    def _kill_and_release(self) -> None:
        sup = self._sup
        busy = [slot for slot in sup.slots if slot.job is not None]
        for slot in busy:
            sup.workforce.kill(slot.index)
        for slot in busy:
            running, slot.job = slot.job, None
            slot.state = SlotState.DYING
            assert running is not None
            if sup.workforce.wait_gone(slot.index, KILL_WAIT_S):
                sup.settler.release(running.lease)
            else:
                sup.settler.abandon(running.lease, "shutdown: its child could not be killed")
