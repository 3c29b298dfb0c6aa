"""Queues the backend refuses to work on (``QueueBroken``: a key of the wrong type, a script
error): left out of the pool's claims for a while so the other queues are served, and logged
when first met, then at most once a minute while they stay broken."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from foundry.domain import QueueBroken

log = logging.getLogger(__name__)

#: A broken queue is left out of claims this long (seconds), then tried again.
QUARANTINE_S = 60.0


class Quarantine:
    """Which queues are left out of claims until when; owns the once-a-minute log."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._logged: dict[str, float] = {}

    def add(self, error: QueueBroken, now: float) -> None:
        """``error.queue`` is broken: leave it out for ``QUARANTINE_S``."""
        queue = error.queue
        if now - self._logged.get(queue, -QUARANTINE_S) >= QUARANTINE_S:
            self._logged[queue] = now
            log.error(
                "%s; this worker leaves it out of its claims and tries it again every %.0f s",
                error,
                QUARANTINE_S,
            )
        self._until[queue] = now + QUARANTINE_S

    def serving(self, queues: Sequence[str], now: float) -> tuple[str, ...]:
        """``queues`` less those left out at ``now``."""
        return tuple(queue for queue in queues if self._until.get(queue, 0.0) <= now)

    def broken(self, now: float) -> list[str]:
        """The queues left out at ``now``."""
        return sorted(queue for queue, until in self._until.items() if until > now)

    def served(self, queues: Sequence[str]) -> None:
        """A claim over ``queues`` was answered: any of them that was broken is fixed."""
        for queue in queues:
            if self._until.pop(queue, None) is not None:
                self._logged.pop(queue, None)
                log.warning("queue %r is served again", queue)

    def next_release(self) -> float:
        """When the next left-out queue is tried again (``inf``: none is left out)."""
        return min(self._until.values(), default=float("inf"))
