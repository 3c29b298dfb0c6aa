"""The pool's lease duties, done before each write to the queue: fencing the leases about to
lapse, renewing the others when due, and applying what a renewal found (leases lost, jobs a
cancel asked to stop).

Owns only whether it is at work (a renewal may bring a cancel, whose write must not renew
inside it). The leases and their cadence are the ``LeaseBook``'s, the renew itself the
``Upkeep``'s; the jobs held and sent are the ``HandOut``'s, which it asks to withdraw, send
back or fence; the children it kills or interrupts are the ``Workforce``'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from foundry.application.pool.handout import HandOut
from foundry.application.pool.leases import FENCED, LeaseBook
from foundry.application.pool.outage import Outage
from foundry.application.pool.settle import Settler
from foundry.application.pool.slots import Slot, SlotState
from foundry.application.pool.starts import Starts
from foundry.application.pool.stopping import Stopping
from foundry.application.pool.upkeep import Upkeep
from foundry.application.pool.workforce import Workforce
from foundry.domain import Cancel, ErrorInfo, JobCancelled
from foundry.ports import Lease


class LeaseDuties:
    """Fences and renews the pool's leases, and gives up those it loses."""

    def __init__(
        self,
        slots: Sequence[Slot],
        book: LeaseBook,
        upkeep: Upkeep,
        handout: HandOut,
        *,
        settler: Settler,
        workforce: Workforce,
        outage: Outage,
        stopping: Stopping,
        starts: Starts,
        term_grace: float,
    ) -> None:
        self._slots = slots  # the supervisor's, read and acted on as they change
        self._book = book
        self._upkeep = upkeep
        self._handout = handout
        self._buffer = handout.buffer  # the hand-out's, seen
        self._settler = settler
        self._workforce = workforce
        self._outage = outage
        self._stopping = stopping
        self._starts = starts
        self._term_grace = term_grace
        self._keeping = False  # in ``due`` (a renewal may bring a cancel, and write)

    def due(self, now: float) -> None:
        """Fence the leases about to lapse, then renew the others if it is time."""
        if self._keeping:  # a cancel the renewal brought is written: no renewal inside it
            return
        self._keeping = True
        try:
            fenced = self._book.fenced(now)
            if fenced:
                self._fence(fenced, now)
            self._renew(now)
        finally:
            self._keeping = False

    def _fence(self, fenced: list[Lease], now: float) -> None:
        """Forget the leases within the margin of their local deadline, killing the children
        that run their jobs. Those of jobs not handed out yet are renewed first: nothing runs
        under them, so the queue's answer decides (``renew_unstarted``)."""
        waiting = {lease.job_id for lease in self._buffer}
        waiting.update(slot.queued.lease.job_id for slot in self._slots if slot.queued)
        unstarted = [lease for lease in fenced if lease.job_id in waiting]
        for lease in fenced:
            if lease.job_id not in waiting:
                self.forget(lease, FENCED)
        if unstarted and self.renew_unstarted(now):
            book = self._book
            unstarted = [x for x in unstarted if book.holds(x) and book.lapsing(x.job_id, now)]
        for lease in unstarted:
            if self._book.holds(lease):  # else the renewal found it lost and forgot it
                self.forget(lease, FENCED)

    def renew_now(self, now: float) -> bool:
        """Renew every lease now; whether the queue answered."""
        return self._renew(now, force=True)

    def renew_unstarted(self, now: float) -> bool:
        """Renew every lease now, for leases about to be fenced whose jobs have not started:
        the renewal keeps (far from its deadline again) only a lease the queue still holds for
        this worker, which no other worker can have taken, so its job may start. ``False`` if
        the queue is down or did not answer: then they are fenced."""
        return not self._outage.down and self._renew(now, force=True)

    def _renew(self, now: float, *, force: bool = False) -> bool:
        """Renew every lease if due (or ``force``d); whether the queue answered."""
        renewed = self._upkeep.renew(now, force=force)
        if renewed is None:
            return False
        self._settler.renewed(renewed.kept, len(renewed.lost))
        for lost in renewed.lost:
            self.forget(lost, "lease lost: the queue no longer holds it for this worker")
        for stopped in renewed.stopped:
            self._stop_job(stopped, now)
        for slot in self._slots:
            if slot.job is not None:
                self._handout.fence_child(slot)
            queued = slot.queued
            if queued is not None and queued.stop is None and not self._stopping.requested:
                at = self._book.start_by(queued.lease.job_id)  # (not one being withdrawn)
                self._workforce.start_by(slot.index, queued.task, at)
        return True

    def _stop_job(self, lease: Lease, now: float) -> None:
        """A cancel asked ``lease``'s job to stop: its child is interrupted (the handler
        raises ``JobCancelled``) and killed ``term_grace`` later as past a hard limit; a job
        not handed out yet ends cancelled at once."""
        reason = lease.stop or "cancelled"
        for slot in self._slots:
            running = slot.job
            if running is not None and running.lease.job_id == lease.job_id:
                if running.stop is None:
                    running.stop = reason
                    grace_at = now + self._term_grace
                    running.hard_at = min(running.hard_at, grace_at)
                    self._workforce.interrupt(slot.index)
                return
            queued = slot.queued
            if queued is not None and queued.lease.job_id == lease.job_id:
                queued.stop = reason  # ends cancelled unstarted, or is stopped once started
                withdrawn = self._handout.withdraw(slot)
                if withdrawn is not None:
                    self._handout.unsend(withdrawn)
                return
        waiting = [held for held in self._buffer if held.job_id == lease.job_id]
        for held in waiting:
            self._buffer.remove(held)
        for held in waiting:  # each write may renew, which may forget the others
            error = ErrorInfo.from_exception(JobCancelled(lease.job_id, reason))
            self._settler.fail(held, error, 0.0, Cancel(reason))

    def forget(self, lease: Lease, reason: str) -> None:
        """Kill whoever runs ``lease``'s job, then abandon it to the queue's recovery (unless
        a write of its end waits for the queue's answer: ``Settler.lost``)."""
        for slot in self._slots:
            if slot.job is not None and slot.job.lease.job_id == lease.job_id:
                self._workforce.kill(slot.index)
                self._starts.settle(slot.index, slot.job)  # reported if it started
                slot.job, slot.state, slot.kill_at = None, SlotState.DYING, float("inf")
                self._handout.drop_queued(slot, answered=False)
            queued = slot.queued
            mine = queued is not None and queued.lease.job_id == lease.job_id
            # Not withdrawn: it may have started, and the child goes.
            if mine and self._handout.withdraw(slot) is None:
                self._workforce.kill(slot.index)
                slot.queued, slot.state, slot.kill_at = None, SlotState.DYING, float("inf")
        # By job id: a renewal replaced the book's lease, not the claim's one in the buffer.
        for held in [held for held in self._buffer if held.job_id == lease.job_id]:
            self._buffer.remove(held)
        self._settler.lost(lease, reason)
