"""The Redis queue's clock: the test's ``Clock`` when one is given, else the Redis server's.

Functions take ``now`` as their first argument ("" lets them read ``TIME``), so one queue has
one clock wherever its time is read: in a function, in a pipeline beside other reads, or alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from foundry.adapters.redis.records import to_ms
from foundry.adapters.redis.runner import call
from foundry.ports.clock import Clock


class QueueClock:
    """Now, in ms, on the queue's clock."""

    def __init__(self, clock: Clock | None) -> None:
        self._clock = clock

    @property
    def served(self) -> bool:
        """Whether now is the server's (``TIME``), the same for every process."""
        return self._clock is None

    def arg(self) -> str:
        """``now`` for a function: the test clock's ms, or "" (the function reads ``TIME``)."""
        return "" if self._clock is None else str(to_ms(self._clock.now()))

    def from_time(self, reply: Sequence[bytes]) -> int:
        """Now, given a ``TIME`` reply read beside other commands (ignored under a test clock)."""
        if self._clock is not None:
            return to_ms(self._clock.now())
        return int(reply[0]) * 1000 + int(reply[1]) // 1000

    def read(self, client: redis.Redis) -> int:
        """Now, asking the server for its ``TIME`` unless a test clock is given."""
        if self._clock is not None:
            return to_ms(self._clock.now())
        return self.from_time(call(client, "TIME"))

    def local_ms(self) -> int:
        """Now without a round trip: the test clock, or this host's (to time a wait only)."""
        if self._clock is not None:
            return to_ms(self._clock.now())
        return int(time.time() * 1000)
