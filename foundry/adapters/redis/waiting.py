"""Waiting for a job to end, without polling: ``watch`` marks the job as waited for, and the
transition that ends it pushes to a short-lived list, ``<base>n:<id>``, that the waiter blocks
on (BLMOVE onto itself, so every waiter of that job wakes, and a push made before the waiter
blocked is still there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from foundry.adapters.redis.clock import QueueClock
from foundry.adapters.redis.errors import guard
from foundry.adapters.redis.keys import KeyLayout
from foundry.adapters.redis.runner import Arg, FunctionRunner

if TYPE_CHECKING:
    from foundry.ports.inspection import JobRecord

#: The longest one BLMOVE blocks (seconds) when the client's socket timeout sets no bound.
BLOCK_S = 1.0

Get = Callable[[str, str | None], "JobRecord | None"]


class Waiter:
    """``QueuePort.wait`` for the Redis queue; ``block_limit_s`` bounds one BLMOVE."""

    def __init__(
        self,
        runner: FunctionRunner,
        keys: KeyLayout,
        clock: QueueClock,
        get: Get,
        block_limit_s: float | None,
    ) -> None:
        self._runner = runner
        self._keys = keys
        self._clock = clock
        self._get = get
        self._block_s = BLOCK_S if block_limit_s is None else min(block_limit_s, BLOCK_S)

    def wait(self, job_id: str, timeout: timedelta, queue: str | None) -> JobRecord | None:
        """The record once final, or as it is when ``timeout`` runs out; ``None`` if unknown."""
        give_up = time.monotonic() + timeout.total_seconds()
        record = self._get(job_id, queue)
        if record is None or record.state.is_final or timeout <= timedelta(0):
            return record
        keys = self._keys.queue(record.job.queue)
        notified = keys.base + "n:" + job_id
        block: list[Arg] = []
        while True:
            with guard("wait", job_id):
                [seen] = self._runner.call_many(
                    [("watch", keys.first, [self._clock.arg(), job_id])], first=block
                )
            remaining = give_up - time.monotonic()
            if seen != b"W" or remaining <= 0:
                return self._get(job_id, keys.queue)
            seconds = max(min(remaining, self._block_s), 0.001)
            block = ["BLMOVE", notified, notified, "RIGHT", "LEFT", f"{seconds:.3f}"]
