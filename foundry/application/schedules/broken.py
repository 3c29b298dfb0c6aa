"""Queues whose schedules the backend refuses (``QueueBroken``: a key of the wrong type):
their schedules do not fire while the other queues' do. Each is logged when first met, then
at most once a minute while it stays broken, and once when its schedules answer again."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from foundry.domain import QueueBroken

log = logging.getLogger(__name__)

#: A queue still broken is logged again at most this often (seconds).
LOG_EVERY_S = 60.0


class BrokenQueues:
    """Which queues refused the scheduler, and when each was last logged."""

    def __init__(self) -> None:
        self._logged: dict[str, float] = {}

    def refused(self, errors: Iterable[QueueBroken], now: float) -> None:
        """These queues refused their schedules' calls at ``now`` (monotonic seconds)."""
        for error in errors:
            if now - self._logged.get(error.queue, -LOG_EVERY_S) >= LOG_EVERY_S:
                self._logged[error.queue] = now
                log.error("%s; its schedules do not fire until it is fixed", error)

    def answered(self, queues: Iterable[str]) -> None:
        """These queues answered: any of them that was broken is fixed."""
        for queue in queues:
            if self._logged.pop(queue, None) is not None:
                log.warning("queue %r answers again: its schedules fire", queue)
