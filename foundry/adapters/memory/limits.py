"""One memory queue's limits: running counts per key, who holds a slot, each key's next free
start, the starts reserved for delayed jobs, and the jobs parked until a slot frees.

The same rules as the Redis claim function's (``lua/queue/claim.lua`` and ``_queue.lua``'s
``free_slots``).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

import attrs

from foundry.domain import Limit, rate_turn

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_ms(ms: int) -> datetime:
    """The moment ``ms`` milliseconds after the epoch."""
    return _EPOCH + timedelta(milliseconds=ms)


#: ``Limiter.admit``'s answer for a job that must wait for a concurrency slot.
PARK = -1


@attrs.define(slots=True)
class Limiter:
    """What the claim and the end of each lease need to keep every key within its limit."""

    running: dict[str, int] = attrs.Factory(dict)
    holders: dict[str, str] = attrs.Factory(dict)  # job id -> the key whose slot it holds
    next_ms: dict[str, int] = attrs.Factory(dict)  # key -> its earliest next start (rate)
    tail_ms: dict[str, int] = attrs.Factory(dict)  # key -> the end of the turns handed out
    reserved: dict[str, bool] = attrs.Factory(dict)  # job id -> it waits for a turn given
    parked: dict[str, deque[str]] = attrs.Factory(dict)  # key -> job ids, first parked first
    parked_ids: set[str] = attrs.Factory(set)
    slot_for: dict[str, str] = attrs.Factory(dict)  # job id made ready by a freed slot -> key

    def admit(self, job_id: str, limit: Limit, now_ms: int) -> int | None:
        """``None``: the job may start now (it takes a slot of its key); ``PARK``: its key
        runs ``concurrency`` jobs already, it is parked; else the ms it waits until (its turn at
        its key's rate, ``rate_turn``)."""
        key = limit.key
        self.slot_for.pop(job_id, None)
        running = self.running.get(key, 0)
        if limit.concurrency is not None and running >= limit.concurrency:
            self.parked.setdefault(key, deque()).append(job_id)
            self.parked_ids.add(job_id)
            return PARK
        if limit.rate is not None:
            wait, self.next_ms[key], self.tail_ms[key] = rate_turn(
                limit.rate,
                reserved=self.reserved.pop(job_id, False),
                next_ms=self.next_ms.get(key, 0),
                tail_ms=self.tail_ms.get(key, 0),
                now_ms=now_ms,
            )
            if wait is not None:
                self.reserved[job_id] = True
                return wait
        if limit.concurrency is not None:
            self.running[key] = running + 1
            self.holders[job_id] = key
        return None

    def unparked(self, job_id: str) -> None:
        """``job_id`` no longer waits for a slot (made ready, cancelled or deleted): a slot
        freed later goes to the next job parked behind it."""
        self.parked_ids.discard(job_id)

    def free(self, job_id: str) -> str | None:
        """``job_id``'s lease ended: give its slot back; the parked job to make ready now."""
        key = self.holders.pop(job_id, None)
        if key is None:
            return None
        left = self.running[key] - 1
        if left:
            self.running[key] = left
        else:
            del self.running[key]
        return self._next_parked(key)

    def pass_on(self, job_id: str) -> str | None:
        """``job_id`` left the ready jobs unclaimed (cancelled, deleted): if a freed slot had
        made it ready, the next job parked for that slot, to make ready in its place."""
        key = self.slot_for.pop(job_id, None)
        return None if key is None else self._next_parked(key)

    def _next_parked(self, key: str) -> str | None:
        waiting = self.parked.get(key)
        while waiting:
            parked = waiting.popleft()
            if parked in self.parked_ids:
                self.parked_ids.discard(parked)
                self.slot_for[parked] = key
                return parked
        self.parked.pop(key, None)
        return None
