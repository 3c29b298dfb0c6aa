"""The dead letters' retention as the functions take it, and the log of what it trimmed."""

from __future__ import annotations

import logging

from foundry.adapters.redis.records import ceil_ms
from foundry.ports.queue_types import DeadLetterRetention

log = logging.getLogger(__name__)


class Retention:
    """``DeadLetterRetention`` for the functions that add dead letters (they trim)."""

    def __init__(self, policy: DeadLetterRetention) -> None:
        self.policy = policy
        age = policy.max_age
        self.args: tuple[int, int] = (
            policy.max_count or 0,
            0 if age is None else max(ceil_ms(age), 1),
        )

    def trimmed(self, queue: str, count: int) -> None:
        """Log the dead letters a function trimmed (none: nothing)."""
        if count:
            log.info(
                "dead letters of %s trimmed by retention: %s removed (%s)",
                queue,
                count,
                self.policy,
            )
