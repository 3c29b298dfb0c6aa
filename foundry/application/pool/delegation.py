"""The parent's side of an idle pool's claim made by one of its children (``child_claims``):
sending the claim, and reading what came of it.

Owns which child makes the pool's claim (``claiming``) and that child's ``CLAIMING`` state.
The claim itself (its token, its limit, the jobs held ahead) is the ``Claimer``'s; what the
claim got is the supervisor's to run and hand out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from foundry.application.pool.child_claims import encode_claim
from foundry.application.pool.claims import Claimer
from foundry.application.pool.settle import Settler
from foundry.application.pool.slots import Slot, SlotState
from foundry.application.pool.workforce import Workforce
from foundry.ports import Lease


class Delegation:
    """Sends an idle pool's blocking claim to an idle child, and takes its answer."""

    def __init__(
        self,
        claimer: Claimer,
        settler: Settler,
        workforce: Workforce,
        *,
        idle_wait: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._claimer = claimer
        self._settler = settler
        self._workforce = workforce
        self._idle_wait = idle_wait
        self._monotonic = monotonic
        self.claiming: int | None = None  # the slot whose child makes the pool's claim

    def send(self, slots: Sequence[Slot], wanted: int, ahead: int) -> bool:
        """Send the claim to an idle child of ``slots``, which starts the first job it gets
        itself; ``False`` if the parent is to claim itself."""
        if self._settler.batched:  # a job done here must not re-run: its completion first
            self._settler.flush()
        now = self._monotonic()
        slot = next((slot for slot in slots if slot.state is SlotState.IDLE), None)
        wait = self._idle_wait
        claim = None if slot is None else self._claimer.delegate(wanted, wait, now, ahead=ahead)
        if slot is None or claim is None:
            return False
        slot.state, self.claiming = SlotState.CLAIMING, slot.index
        if not self._workforce.send(slot.index, encode_claim(*claim)):
            self._claimer.delegation_unsent()
            slot.state, self.claiming = SlotState.DYING, None  # its exit comes next
        return True

    def claimed(self, slot: Slot, leases: list[Lease], now: float) -> tuple[list[Lease], float]:
        """``slot``'s child told what the claim got (``answers_for`` it): the leases, held
        from the time the claim was sent (returned with them)."""
        self.claiming = None
        claimed = self._claimer.delegated(leases, now)
        slot.state = SlotState.IDLE
        return claimed

    def failed(self, slot: Slot, error: Exception, now: float) -> None:
        """``slot``'s child's claim (``answers_for`` it) raised ``error``: as if the parent's
        own had."""
        self.claiming, slot.state = None, SlotState.IDLE
        self._claimer.delegation_failed(error, now)

    def answers_for(self, slot: Slot) -> bool:
        """Whether ``slot``'s child makes the pool's claim: else an answer about one is not
        its child's (the pipe cannot be trusted)."""
        return self.claiming == slot.index and slot.state is SlotState.CLAIMING

    def lost(self, slot: Slot, now: float) -> tuple[list[Lease], bool] | None:
        """``slot``'s child died: if it made the pool's claim and had not told what it got,
        the leases asked again by the claim's token, and whether the child had started the
        first (its job then); else ``None``."""
        if self.claiming != slot.index:
            return None
        self.claiming = None
        leases = self._claimer.recover(now)
        return leases, bool(leases) and self._workforce.started(slot.index) > slot.sent
