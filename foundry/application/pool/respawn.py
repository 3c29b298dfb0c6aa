"""Forking children, and trying again when a fork fails (EAGAIN, ENOMEM, EMFILE).

Owns the count of failed forks in a row and each empty slot's retry time. A failed fork
leaves its slot empty (no job is claimed for it) and is retried after a backoff that doubles
with each failure in a row; after ``MAX_SPAWN_FAILURES`` in a row it tells the supervisor to
stop the pool with exit code 1, as children that keep dying before they are ready do.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from foundry.application.pool.slots import Slot, SlotState
from foundry.application.pool.workforce import Workforce

log = logging.getLogger(__name__)

#: Failed forks in a row that stop the pool.
MAX_SPAWN_FAILURES = 5
#: Seconds before the first retry of a failed fork; doubled after each further failure.
SPAWN_BACKOFF_S = 0.5
#: The longest wait between two forks of one slot (seconds).
SPAWN_BACKOFF_MAX_S = 8.0


class Spawned(NamedTuple):
    """What a fork attempt left: the slot's new state, and whether the pool must stop."""

    slot: Slot
    stop_pool: bool = False


class Respawner:
    """Forks the child of a slot; schedules another try when the fork fails."""

    def __init__(self, workforce: Workforce) -> None:
        self._workforce = workforce
        self.failures = 0  # failed forks in a row, any slot
        self._due: dict[int, float | None] = {}  # empty slot -> when to fork (None: not yet set)

    def spawn(self, index: int) -> Spawned:
        """(Re)start the child of slot ``index``; on a failed fork the slot stays empty."""
        self._due.pop(index, None)
        try:
            pid = self._workforce.spawn(index)
        except OSError as error:
            return self._failed(index, error)
        self.failures = 0
        return Spawned(Slot(index, pid=pid))

    def due(self, now: float) -> list[int]:
        """The empty slots whose backoff is over, to fork now."""
        # max(): a fork of another slot that succeeded since has reset the count to 0.
        delay = min(SPAWN_BACKOFF_S * 2 ** max(self.failures - 1, 0), SPAWN_BACKOFF_MAX_S)
        ready = []
        for index, due in list(self._due.items()):
            if due is None:  # the failure's time is known only now: the workforce has no clock
                self._due[index] = now + delay
            elif now >= due:
                ready.append(index)
        return ready

    def next_wake(self) -> float:
        """When the next empty slot is due (now if one awaits its schedule)."""
        if not self._due:
            return float("inf")
        dues = [float("-inf") if due is None else due for due in self._due.values()]
        return min(dues, default=float("inf"))

    def _failed(self, index: int, error: OSError) -> Spawned:
        self.failures += 1
        empty = Slot(index, pid=0, state=SlotState.EMPTY)
        if self.failures >= MAX_SPAWN_FAILURES:
            log.error(
                "%s forks in a row failed (last: %s); stopping the pool", self.failures, error
            )
            return Spawned(empty, stop_pool=True)
        log.error("cannot fork a child (%s); slot %s stays empty and is retried", error, index)
        self._due[index] = None
        return Spawned(empty)
