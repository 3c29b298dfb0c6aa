"""Handing jobs out to the children: the prefetch buffer, and each job sent to a child.

Owns the buffer of leases not sent to a child yet and the sending of jobs: to an idle child
(``assign``), queued behind a busy child's running job (``Slot.queued``), withdrawn from it
again, or back to the buffer when a child did not start it (``unsend``). It sets the slots'
``job`` and ``queued`` as it sends; their other changes (a child's replies, exits and
kills) are the supervisor's. The leases and their deadlines are the ``LeaseBook``'s; a
renewal, and forgetting a lease the pool lost, are the supervisor's duties, which it is
handed as functions.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from foundry.application.chains import PreviousResultGone, PreviousResults
from foundry.application.pool.leases import FENCED, LeaseBook
from foundry.application.pool.outage import Outage
from foundry.application.pool.settle import Settler
from foundry.application.pool.slots import NOT_STARTED, Running, Slot, SlotState
from foundry.application.pool.starts import Starts
from foundry.application.pool.stopping import Stopping
from foundry.application.pool.wire import encode_task
from foundry.application.pool.workforce import Workforce
from foundry.application.registry import JobRegistry
from foundry.domain import Cancel, Dead, ErrorInfo, FoundryError, JobCancelled
from foundry.ports import Clock, Lease

log = logging.getLogger(__name__)

#: Why a job queued in a child the pool kills is given up when it may have started there.
KILLED_QUEUED = "lease lost: given up with its child, killed when the job may have started"
#: A chained job whose previous result cannot be read now is given back for this long.
PREVIOUS_RETRY = timedelta(seconds=1)


class HandOut:
    """Gives buffered leases to idle children, and the next one to hold to each busy child."""

    def __init__(
        self,
        slots: Sequence[Slot],
        book: LeaseBook,
        settler: Settler,
        workforce: Workforce,
        *,
        outage: Outage,
        stopping: Stopping,
        starts: Starts,
        registry: JobRegistry,
        previous: PreviousResults,
        clock: Clock,
        monotonic: Callable[[], float],
        term_grace: float,
        unknown_handler: Callable[[Lease], None],
        recycle_reason: Callable[[int, int], str | None],
        renew: Callable[[float], bool],
        renew_unstarted: Callable[[float], bool],
        forget: Callable[[Lease, str], None],
    ) -> None:
        """``renew``: renew every lease now, whether the queue answered; ``renew_unstarted``:
        the same for leases about to be fenced whose jobs have not started; ``forget``: give
        up a lease (and kill whoever runs its job), with the reason."""
        self.buffer: deque[Lease] = deque()
        self._slots = slots  # the supervisor's, read and sent to as they change
        self._book = book
        self._settler = settler
        self._workforce = workforce
        self._outage = outage
        self._stopping = stopping
        self._starts = starts
        self._registry = registry
        self._previous = previous
        self._clock = clock
        self._monotonic = monotonic  # read as each hand-out goes: a write before may block
        self._term_grace = term_grace
        self._unknown_handler = unknown_handler
        self._recycle_reason = recycle_reason
        self._renew = renew
        self._renew_unstarted = renew_unstarted
        self._forget = forget

    def hand_out(self) -> None:
        """Give buffered leases to idle children, each at the time read as it goes: a write
        before it (a claim, a release) may have blocked. A lease about to be fenced (a claim
        whose reply came late) is renewed first, once, and handed out only if that kept it."""
        renewed: set[str] = set()  # jobs whose lapsing lease a renewal here was sent for
        for slot in self._slots:
            while slot.state is SlotState.IDLE and self.buffer and slot.open_tasks < 2:
                now = self._monotonic()
                lease = self.buffer[0]
                if lease.ahead and self._outage.down:
                    return  # its start could not be reported: it waits for the queue
                if lease.ahead and self._outage.unconfirmed:
                    # A failover may have lost its claim (the new master hands the job out
                    # again): a renew of every lease first, which forgets those the queue lost.
                    if not self._renew(now):
                        return
                    continue
                if self._book.lapsing(lease.job_id, now):  # the next tick would fence it
                    if lease.job_id not in renewed and self._renew_unstarted(now):
                        renewed.add(lease.job_id)
                        continue  # kept, far from its deadline again; or lost, forgotten
                    self.buffer.popleft()
                    self._forget(lease, FENCED)
                    continue
                self.buffer.popleft()
                self.assign(slot, lease, now)
        if self._take_back():
            self.hand_out()
            return
        self._queue_ahead()

    def _take_back(self) -> bool:
        """Nothing buffered while a child is idle: jobs queued behind other children's running
        ones (which may run long) come back to the buffer for the idle children, unless their
        child may have moved on to them (``withdraw``); it skips them. Whether any came back."""
        if self.buffer or self._stopping.requested:
            return False
        idle = 0
        for slot in self._slots:  # (a loop, not a generator: it runs once per reply or more)
            if slot.state is SlotState.IDLE and slot.open_tasks < 2:
                idle += 1
        if not idle:
            return False
        for slot in self._slots:
            if len(self.buffer) >= idle:
                break
            withdrawn = self.withdraw(slot)
            if withdrawn is not None:
                self.unsend(withdrawn)  # a cancelled one ends here, not in the buffer
        return bool(self.buffer)

    def _queue_ahead(self) -> None:
        """Give each busy child the next buffered job to hold, so it starts that job the
        moment its own ends instead of waiting for the parent; only jobs that need nothing
        before their start (no start to report first, no failover to check, far from being
        fenced)."""
        if not self.buffer or self._stopping.requested:
            return
        if self._outage.down or self._outage.unconfirmed:
            return
        for slot in self._slots:
            if not self.buffer:
                return
            if not self._may_queue(slot):
                continue
            now = self._monotonic()
            lease = self.buffer[0]
            if lease.lapses or self._book.lapsing(lease.job_id, now):
                return  # for an idle child, through hand_out's checks
            self.buffer.popleft()
            self._queue_behind(slot, lease, now)

    def _may_queue(self, slot: Slot) -> bool:
        """Whether ``slot``'s child may hold a job queued behind the one it runs: it runs
        one that is not being stopped, it is not replaced after it (max tasks), and it has
        skipped any job withdrawn from it (a third open task would share a start-by time)."""
        running = slot.job
        return (
            slot.state is SlotState.BUSY
            and running is not None
            and slot.queued is None
            and slot.open_tasks < 2
            and running.stop is None
            and running.term_at is None
            and self._recycle_reason(slot.tasks + 1, slot.rss) is None
        )

    def assign(self, slot: Slot, lease: Lease, now: float) -> bool:
        """Send ``lease``'s job to ``slot``'s idle child; ``False`` if it did not start there."""
        ready, payload = self._payload(lease)
        if not ready or (lease.lapses and not self._report_start(lease, now)):
            return False
        job = lease.job
        started_at = self._clock.now()
        running = Running(lease, started_at, now, now + job.timeout.total_seconds(), slot.sent)
        slot.job = running
        slot.state = SlotState.BUSY
        self.fence_child(slot)
        if not self._send(slot, running, payload):
            slot.job = None
            slot.state = SlotState.DYING
            self._settler.release(lease)
            return False
        self._book.started(lease.job_id)
        self._settler.started(lease, slot.pid, started_at)
        return True

    def _report_start(self, lease: Lease, now: float) -> bool:
        """A held job whose lease lapsed unstarted before (its worker may have died running
        it) has its start reported before it runs, in a renew of every lease: if it kills
        this worker too, its attempt is spent (Q6). ``False`` if it may not start now (the
        queue did not answer: it is given back, or its lease is lost)."""
        self._book.started(lease.job_id)
        if not self._renew(now):
            self._settler.release(lease)
            return False
        return lease.job_id in self._book

    def _queue_behind(self, slot: Slot, lease: Lease, now: float) -> None:
        """Send ``lease``'s job to ``slot``'s busy child, which starts it as its job ends
        (if its start-by time has not passed then): the child's answer about that job tells
        the parent it started (``promote``), and only then is its attempt spent."""
        ready, payload = self._payload(lease)
        if not ready:
            return
        queued = Running(lease, NOT_STARTED, now, float("inf"), slot.sent)
        slot.queued = queued
        self.fence_child(slot)
        if not self._send(slot, queued, payload):  # the child is gone: its exit comes next
            slot.queued = None
            slot.state = SlotState.DYING
            self.buffer.appendleft(lease)

    def _send(self, slot: Slot, task: Running, payload: dict[str, Any] | None) -> bool:
        """Send ``task`` as the child's next task, with the time it may start by."""
        start_by = self._book.start_by(task.lease.job_id)
        self._workforce.start_by(slot.index, task.task, start_by)
        if not self._workforce.send(slot.index, encode_task(task.lease, payload)):
            return False
        slot.sent += 1
        return True

    def _payload(self, lease: Lease) -> tuple[bool, dict[str, Any] | None]:
        """Whether ``lease``'s job may go to a child now, and its payload (``None``: the
        job's own). A job naming no handler, or waiting for a result the queue cannot give
        now (given back) or ever (dead), is settled here."""
        job = lease.job
        if job.name not in self._registry:
            self._unknown_handler(lease)
            return False, None
        try:
            return True, self._previous.payload(job)
        except PreviousResultGone as gone:  # it would come back forever
            self._settler.fail(lease, ErrorInfo.from_exception(gone), 0.0, Dead(gone.reason))
            return False, None
        except FoundryError as error:
            log.warning("job %s waits for a result the queue cannot give (%s)", job.id, error)
            self._settler.release(lease, PREVIOUS_RETRY)
            return False, None

    def run_claimed(self, slot: Slot, lease: Lease, started: float, now: float) -> None:
        """The job a child claimed and started at ``started``: the slot's job, as if
        ``assign`` had sent it then."""
        started_at = self._clock.now() - timedelta(seconds=now - started)
        deadline = started + lease.job.timeout.total_seconds()
        slot.job = Running(lease, started_at, started, deadline, slot.sent)
        slot.sent += 1
        slot.state = SlotState.BUSY
        self.fence_child(slot)
        self._book.started(lease.job_id)
        self._settler.started(lease, slot.pid, started_at)

    def promote(self, slot: Slot, ended: float, now: float) -> None:
        """The child's job ended at ``ended`` (its monotonic clock): the job queued behind
        it started then (reported once the parent sees it did: ``Starts``), and its time
        limits count from then."""
        queued, slot.queued = slot.queued, None
        if queued is None:
            return
        lease = queued.lease
        queued.started, queued.started_at = ended, self._clock.now()
        queued.hard_at = ended + lease.job.timeout.total_seconds()
        slot.job = queued
        self._book.started(lease.job_id)
        self._starts.promoted(slot.index, queued, slot.pid)
        if queued.stop is not None:  # a cancel came while it was queued: as if running
            queued.hard_at = min(queued.hard_at, now + self._term_grace)
            self._workforce.interrupt(slot.index)

    def fence_promoted(self, slot: Slot, promoted: Running | None) -> None:
        """After the child's answer about its job: once the job it held queued (``promoted``)
        is its job (``promote``), its fence follows that job alone, unless a job queued
        behind it since set it (``_queue_behind``). Until then the fence stays at the earlier
        deadline of both jobs, which is never too late."""
        if promoted is not None and slot.queued is None:
            self.fence_child(slot)

    def fence_child(self, slot: Slot) -> None:
        """The child kills itself at the earlier deadline of the jobs it holds: it may start
        the queued one before the parent reads its answer about the running one."""
        running, queued = slot.job, slot.queued
        deadline = math.inf if running is None else self._book.child_deadline(running.lease.job_id)
        if queued is not None:
            deadline = min(deadline, self._book.child_deadline(queued.lease.job_id))
        if deadline != math.inf:
            self._workforce.fence(slot.index, deadline)

    def unsend(self, task: Running) -> None:
        """A job sent to a child that did not start it: back to the front of the buffer,
        its attempt not spent; a cancelled one ends cancelled, and once a stop is asked for
        it is released."""
        lease = task.lease
        if lease.job_id not in self._book:
            return  # given up meanwhile
        if task.stop is not None:
            error = ErrorInfo.from_exception(JobCancelled(lease.job_id, task.stop))
            self._settler.fail(lease, error, 0.0, Cancel(task.stop))
        elif self._stopping.requested:
            self._settler.release(lease)
        else:
            self.buffer.appendleft(lease)

    def withdraw(self, slot: Slot) -> Running | None:
        """Withdraw the job queued in ``slot``'s child: its start-by time is moved to the
        past, which the child reads after answering about its running job. If no answer is
        waiting in the pipe, the queued job will not start (returned, for the caller to
        settle); else it may have started (``None``; the slot keeps it)."""
        queued = slot.queued
        if queued is None:
            return None
        self._workforce.start_by(slot.index, queued.task, float("-inf"))
        if self._workforce.answered(slot.index):
            return None
        slot.queued = None
        return queued

    def withdraw_queued(self) -> None:
        """A call to the queue failed: jobs queued in children go back to the buffer, where
        they wait for the queue as held jobs do (their starts could not be reported, and a
        failover may have lost their claims); those that may have started are left."""
        for slot in self._slots:
            withdrawn = self.withdraw(slot)
            if withdrawn is not None:
                self.buffer.appendleft(withdrawn.lease)

    def drop_queued(self, slot: Slot, *, answered: bool) -> None:
        """The pool kills ``slot``'s child: the job it holds queued goes back to the buffer
        if it cannot have started (``answered``: the child has answered about the job before
        it, so it may have moved on to it), else it is given up as a lease the pool lost:
        started there, it must not run again under the same attempt."""
        withdrawn = None if answered else self.withdraw(slot)
        if withdrawn is not None:
            self.unsend(withdrawn)
            return
        queued, slot.queued = slot.queued, None
        if queued is not None and queued.lease.job_id in self._book:
            self._settler.lost(queued.lease, KILLED_QUEUED)

    def drop_replaced(self, leases: list[Lease]) -> None:
        """Buffered leases of jobs a claim just returned are gone: a failover lost their claims
        and the new master leased the jobs again (the book holds the new leases only)."""
        claimed = {lease.job_id for lease in leases}
        if any(held.job_id in claimed for held in self.buffer):
            kept = [held for held in self.buffer if held.job_id not in claimed]
            self.buffer.clear()
            self.buffer.extend(kept)
