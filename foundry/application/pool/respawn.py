"""Forking children, and trying again when a fork fails (EAGAIN, ENOMEM, EMFILE).

A failed fork leaves its slot empty (no job is claimed for it) and is retried after a backoff
that doubles with each failure in a row; after ``MAX_SPAWN_FAILURES`` in a row the pool stops
with exit code 1, as it does for children that keep dying before they are ready.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from foundry.application.pool.slots import Slot, SlotState

if TYPE_CHECKING:
    from foundry.application.pool.supervisor import Supervisor

#: Failed forks in a row that stop the pool.
MAX_SPAWN_FAILURES = 5
#: Seconds before the first retry of a failed fork; doubled after each further failure.
SPAWN_BACKOFF_S = 0.5
#: The longest wait between two forks of one slot (seconds).
SPAWN_BACKOFF_MAX_S = 8.0


class Respawner:
    """Forks the child of a slot; schedules another try when the fork fails."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor
        self.failures = 0  # failed forks in a row, any slot
        self._due: dict[int, float | None] = {}  # empty slot -> when to fork (None: not yet set)

    def spawn(self, slot: Slot) -> None:
        """(Re)start the child of ``slot``; on a failed fork the slot stays empty."""
        sup = self._sup
        self._due.pop(slot.index, None)
        try:
            pid = sup.workforce.spawn(slot.index)
        except OSError as error:
            self._failed(slot, error)
            return
        self.failures = 0
        sup.slots[slot.index] = Slot(slot.index, pid=pid)

    def tick(self, now: float) -> None:
        """Fork the empty slots whose backoff is over (none once the pool is stopping)."""
        if self._sup.stopping.requested:
            return
        # max(): a fork of another slot that succeeded since has reset the count to 0.
        delay = min(SPAWN_BACKOFF_S * 2 ** max(self.failures - 1, 0), SPAWN_BACKOFF_MAX_S)
        for index, due in list(self._due.items()):
            if due is None:  # the failure's time is known only now: the workforce has no clock
                self._due[index] = now + delay
            elif now >= due:
                self.spawn(self._sup.slots[index])

    def next_wake(self) -> float:
        """When the next empty slot is due (now if one awaits its schedule)."""
        dues = [float("-inf") if due is None else due for due in self._due.values()]
        return min(dues, default=float("inf"))

    def _failed(self, slot: Slot, error: OSError) -> None:
        sup = self._sup
        self.failures += 1
        sup.slots[slot.index] = Slot(slot.index, pid=0, state=SlotState.EMPTY)
        if self.failures >= MAX_SPAWN_FAILURES:
            logger.error(
                "{} forks in a row failed (last: {}); stopping the pool", self.failures, error
            )
            sup.exit_code = 1
            sup.stopping.request(cold=True)
            return
        logger.error(
            "cannot fork a child ({}); slot {} stays empty and is retried", error, slot.index
        )
        self._due[slot.index] = None
