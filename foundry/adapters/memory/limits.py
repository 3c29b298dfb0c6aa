"""One memory queue's limits: running counts per key, who holds a slot, each key's next free
start, the job holding it and the jobs in line behind that one, and the jobs parked until a
slot frees.

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


#: ``Limiter.admit``'s answer for a job that must wait for a concurrency slot, or in line for
#: its key's rate turn: it is set aside until a slot or the turn is handed to it.
PARK = -1


@attrs.define(slots=True)
class Limiter:
    """What the claim and the end of each lease need to keep every key within its limit."""

    running: dict[str, int] = attrs.Factory(dict)
    holders: dict[str, str] = attrs.Factory(dict)  # job id -> the key whose slot it holds
    next_ms: dict[str, int] = attrs.Factory(dict)  # key -> its earliest next start (rate)
    turn: dict[str, str] = attrs.Factory(dict)  # key -> the job delayed until its next start
    turn_of: dict[str, str] = attrs.Factory(dict)  # job id -> the key whose turn it holds
    in_line: dict[str, deque[str]] = attrs.Factory(dict)  # key -> ids waiting for the turn
    in_line_ids: set[str] = attrs.Factory(set)
    parked: dict[str, deque[str]] = attrs.Factory(dict)  # key -> job ids, first parked first
    parked_ids: set[str] = attrs.Factory(set)
    slot_for: dict[str, str] = attrs.Factory(dict)  # job id made ready by a freed slot -> key

    def admit(self, job_id: str, limit: Limit, now_ms: int) -> int | None:
        """``None``: the job may start now (it takes a slot of its key; a rate's turn then
        goes to the next in line, see ``next_turn``); ``PARK``: its key runs ``concurrency``
        jobs already, or another job holds its rate's turn: it is set aside; else the ms it
        waits until (its key's next turn, which it now holds, ``rate_turn``)."""
        key = limit.key
        self.slot_for.pop(job_id, None)
        running = self.running.get(key, 0)
        if limit.concurrency is not None and running >= limit.concurrency:
            self.parked.setdefault(key, deque()).append(job_id)
            self.parked_ids.add(job_id)
            return PARK
        if limit.rate is not None:
            holder = self.turn.get(key)
            if holder is not None and holder != job_id:
                self.in_line.setdefault(key, deque()).append(job_id)
                self.in_line_ids.add(job_id)
                return PARK
            wait, self.next_ms[key] = rate_turn(
                limit.rate,
                holds_turn=holder == job_id,
                next_ms=self.next_ms.get(key, 0),
                now_ms=now_ms,
            )
            if wait is not None:
                self.turn[key], self.turn_of[job_id] = job_id, key
                return wait
            if holder is not None:
                del self.turn[key], self.turn_of[job_id]
        if limit.concurrency is not None:
            self.running[key] = running + 1
            self.holders[job_id] = key
        return None

    def unparked(self, job_id: str) -> None:
        """``job_id`` no longer waits for a slot or in line for a turn (made ready, cancelled
        or deleted): a slot freed or a turn passed later goes to the next job behind it."""
        self.parked_ids.discard(job_id)
        self.in_line_ids.discard(job_id)

    def next_turn(self, key: str) -> tuple[str, int] | None:
        """The job first in line for ``key``'s rate turn, and the ms it waits until, when no
        job holds the turn: it holds it now (the caller delays it until then)."""
        line = self.in_line.get(key)
        while line and key not in self.turn:
            job_id = line.popleft()
            if job_id in self.in_line_ids:
                self.in_line_ids.discard(job_id)
                self.turn[key], self.turn_of[job_id] = job_id, key
                return job_id, self.next_ms.get(key, 0)
        if not line:
            self.in_line.pop(key, None)
        return None

    def dropped(self, job_id: str) -> tuple[str, int] | None:
        """``job_id`` left unclaimed (cancelled, deleted): if it held its key's rate turn, the
        job next in line takes the turn (``next_turn``), so no turn goes unused."""
        key = self.turn_of.pop(job_id, None)
        if key is None:
            return None
        del self.turn[key]
        return self.next_turn(key)

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

    def prune(self, now_ms: int) -> None:
        """Forget the rate state of keys that no longer decide anything: no job holds their
        turn and their next start has come (a claim then starts a job of the key at once, as
        for a key never seen), so per-key state does not grow with every key ever used."""
        idle = [key for key, at in self.next_ms.items() if at <= now_ms and key not in self.turn]
        for key in idle:
            del self.next_ms[key]

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
