"""How long batched completions wait for a claim to carry them.

Owns nothing but the reading: the completions are the ``Settler``'s, the run times the
``PoolCounters``', the claim cadence the ``Claimer``'s; the slots and the prefetch buffer are
the supervisor's, seen here as they change.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from foundry.application.pool.claims import Claimer
from foundry.application.pool.heartbeat import PoolCounters
from foundry.application.pool.outage import Outage
from foundry.application.pool.settle import CARRY_MAX_S, FLUSH_AFTER_S, Settler
from foundry.application.pool.slots import Slot, SlotState
from foundry.application.pool.stopping import Stopping
from foundry.ports import Lease


class CompletionWait:
    """Decides how long the settler's batched completions wait for a claim."""

    def __init__(
        self,
        settler: Settler,
        counters: PoolCounters,
        claimer: Claimer,
        outage: Outage,
        stopping: Stopping,
        *,
        slots: Sequence[Slot],
        buffer: deque[Lease],
    ) -> None:
        self._settler = settler
        self._counters = counters
        self._claimer = claimer
        self._outage = outage
        self._stopping = stopping
        self._slots = slots  # the supervisor's, read as they change
        self._buffer = buffer

    def wait(self, now: float) -> float:
        """``FLUSH_AFTER_S``, or, while replies will bring a claim soon (the next one: a busy
        child holds no job queued; or the one that takes the jobs held down to the refill
        mark), about the time those replies take to come since the oldest completion's (a
        reply every mean run time over the children, and half of one more), at most
        ``CARRY_MAX_S``: then one round trip, not several, writes them and claims. A claim
        more than one reply away that is not expected within ``CARRY_MAX_S`` carries none:
        they go after ``FLUSH_AFTER_S``."""
        settler = self._settler
        if not settler.batched or self._stopping.requested or self._outage.down:
            return FLUSH_AFTER_S
        counters = self._counters
        if not counters.processed:
            return FLUSH_AFTER_S
        every = counters.runtime_s / counters.processed / len(self._slots)
        replies = self._replies_to_claim()
        # The replies since the oldest completion's (each batched one came with one).
        expected = (len(settler.batched) - 1 + replies + 0.5) * every
        if replies > 1 and expected > CARRY_MAX_S:
            return FLUSH_AFTER_S
        wait = min(CARRY_MAX_S, expected)
        if wait <= FLUSH_AFTER_S or self._claimer.next_wake(idle=False) > now + wait:
            return FLUSH_AFTER_S  # (a busy poll of an empty queue waits longer)
        return wait

    def _replies_to_claim(self) -> int:
        """How many more replies until one brings a claim: the next, if a busy child holds
        no job queued (it turns idle); else the one that takes the held jobs to the refill
        mark (each reply promotes a queued job and queues a buffered one behind it)."""
        queued = 0
        for slot in self._slots:
            if slot.queued is not None:
                queued += 1
            elif slot.state is SlotState.BUSY:
                return 1
        return self._claimer.replies_to_refill(len(self._buffer) + queued)
