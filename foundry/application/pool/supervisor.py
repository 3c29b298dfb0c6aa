"""The pool's decisions, free of processes and sleeps: driven by events and ``now``.

The event loop (``foundry.application.pool.loop``) feeds it child messages, child exits and the
time; it answers by claiming, settling jobs through the ``QueuePort`` and commanding a
``Workforce``. Times are monotonic seconds, passed in (and read again from the ``monotonic``
clock it is given after a write that may block), so tests drive it with a manual clock.

The supervisor owns the pool's state: the slots (each child's state, and the job it runs)
and the exit code; it applies the children's events. Its helpers see only the collaborators
they need. Most own only their own timing and counts and return decisions (``Claimer``,
``Failures``, ``Stopping``, ``Upkeep``, ``Respawner``, ``CompletionWait``); three act on a
part of the slots' life: ``HandOut`` owns the prefetch buffer and sends jobs to children,
``LeaseDuties`` fences and renews the leases before each write and gives up those lost,
``Delegation`` owns the child making the pool's claim.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from random import Random

from foundry.application.chains import PreviousResults
from foundry.application.outcome import PoolObserver
from foundry.application.pool.claims import Claimer
from foundry.application.pool.completions import CompletionWait
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.delegation import Delegation
from foundry.application.pool.failures import Act, Failures
from foundry.application.pool.handout import HandOut
from foundry.application.pool.heartbeat import Heartbeat, PoolCounters
from foundry.application.pool.lease_duties import LeaseDuties
from foundry.application.pool.leases import LeaseBook
from foundry.application.pool.outage import Outage
from foundry.application.pool.quarantine import Quarantine
from foundry.application.pool.reads import Reads
from foundry.application.pool.respawn import Respawner
from foundry.application.pool.settle import Settler
from foundry.application.pool.slots import Running, Slot, SlotState, all_idle
from foundry.application.pool.starts import Starts
from foundry.application.pool.stopping import KILL_WAIT_S, Stopping
from foundry.application.pool.upkeep import Upkeep
from foundry.application.pool.wire import Reply
from foundry.application.pool.workforce import Workforce
from foundry.application.registry import JobRegistry
from foundry.domain import Cancel, Progress
from foundry.ports import Clock, Lease, QueuePort

log = logging.getLogger(__name__)

#: After the forks, how long the pool's upkeep leaves the queue to the children's first
#: claims (seconds).
FIRST_CLAIMS_S = 0.05


class Supervisor:
    """Decides what the pool does next; owns the slots and the exit code."""

    def __init__(
        self,
        queue: QueuePort,
        registry: JobRegistry,
        config: PoolConfig,
        workforce: Workforce,
        *,
        clock: Clock,
        heartbeat: Heartbeat,
        observer: PoolObserver | None = None,
        rng: Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._registry = registry
        self._workforce = workforce
        self._clock = clock
        self._monotonic = monotonic  # the loop's clock, read again after a write that may block
        self.heartbeat = heartbeat
        self._book = LeaseBook(config.lease.total_seconds())
        self._counters = PoolCounters()
        outage = self._outage = Outage(on_failed=self._withdraw_queued)
        self.settler = Settler(
            queue,
            clock=clock,
            book=self._book,
            counters=self._counters,
            observers=registry.hooks.observer(observer),
            rng=rng or Random(),
            before_write=self._keep_leases,
            outage=outage,
            monotonic=monotonic,
        )
        self._failures = Failures(
            self.settler, config, clock=clock, host=heartbeat.host, started_at=heartbeat.started_at
        )
        self.stopping = Stopping(config, queue)
        self._quarantine = Quarantine()
        self._claimer = Claimer(
            self.settler,
            self._book,
            outage,
            config,
            counters=self._counters,
            worker=heartbeat.id,
            quarantine=self._quarantine,
            monotonic=monotonic,
        )
        self._upkeep = Upkeep(
            queue,
            self._book,
            outage,
            config.lease,
            self._quarantine,
            served=config.queues,
            cancel_check=config.cancel_check,
            monotonic=monotonic,
        )
        self._respawner = Respawner(workforce)
        self._starts = Starts(workforce, self._report_start_of)
        self._reads = Reads()
        self.slots = [Slot(index) for index in range(config.concurrency)]
        # Read once, not per job: how long a retiring child may take to exit after its job,
        # its memory limit, and what recycles children (no limit: nothing to ask).
        self._exit_wait = config.term_grace.total_seconds() + 5.0
        self._max_rss = config.max_rss_bytes
        recycles = config.max_tasks_per_child is not None or self._max_rss is not None
        self._recycle_reason: Callable[[int, int], str | None] = (
            config.recycle_reason if recycles else _never_recycled
        )
        self._handout = HandOut(
            self.slots,
            self._book,
            self.settler,
            workforce,
            outage=outage,
            stopping=self.stopping,
            starts=self._starts,
            registry=registry,
            previous=PreviousResults(queue),
            clock=clock,
            monotonic=monotonic,
            term_grace=config.term_grace.total_seconds(),
            unknown_handler=self._failures.unknown_handler,
            recycle_reason=self._recycle_reason,
            renew=self._renew_now,
            renew_unstarted=self._renew_unstarted,
            forget=self._forget,
        )
        self.buffer = self._handout.buffer  # the hand-out's; claims fill it, a stop empties it
        self._duties = LeaseDuties(
            self.slots,
            self._book,
            self._upkeep,
            self._handout,
            settler=self.settler,
            workforce=workforce,
            outage=outage,
            stopping=self.stopping,
            starts=self._starts,
            term_grace=config.term_grace.total_seconds(),
        )
        self._completions = CompletionWait(
            self.settler,
            self._counters,
            self._claimer,
            outage,
            self.stopping,
            slots=self.slots,
            buffer=self.buffer,
        )
        self.exit_code: int | None = None
        self._upkeep_from = 0.0  # while the children start: see first_claims_first
        self._children_claim = queue.claims_from_forks
        self._delegation = Delegation(
            self._claimer,
            self.settler,
            workforce,
            idle_wait=config.idle_wait.total_seconds(),
            monotonic=monotonic,
        )

    # -- events ---------------------------------------------------------------------------

    def start(self) -> None:
        """Publish the heartbeat, then fork every child. The pool is in the registry before
        it runs a job, and the heartbeat's writes are done before the forks: after a fork,
        each page of memory the parent writes to is copied (a fault each), and the children
        are ready sooner than the parent's first claim is out."""
        self.heartbeat.beat(self._monotonic(), self._counters)
        for index in range(len(self.slots)):
            self._spawn(index)

    def first_claims_first(self, now: float) -> None:
        """The reap and the cancel poll wait until every child is ready, at most
        ``FIRST_CLAIMS_S`` after the forks: a child is ready within a few milliseconds, and
        its first claim would wait behind them. (The heartbeat goes first: the pool is in the
        registry before it runs a job.)"""
        self._upkeep_from = now + FIRST_CLAIMS_S
        self._upkeep.due_at(self._upkeep_from)

    def abort(self, now: float) -> None:
        """The loop failed: stop cold with exit code 1, releasing what can be released."""
        self._fail()
        self._stop(now)

    def child_ready(self, index: int, now: float) -> None:
        """A child finished its start-up and takes jobs."""
        slot = self.slots[index]
        if slot.state is SlotState.STARTING:
            slot.state = SlotState.IDLE
            self._failures.child_ready()
            self.fill(now)
            starting = any(slot.state is SlotState.STARTING for slot in self.slots)
            if now < self._upkeep_from and not starting:  # the first claims are out
                self._upkeep_from = 0.0
                self._upkeep.due_at(now)

    def child_replied(self, index: int, reply: Reply, now: float) -> None:
        """A child finished its job: hand it the next one, then settle this one."""
        slot = self.slots[index]
        running = slot.job
        if running is None:
            log.warning("child %s answered for a job it no longer holds; ignored", slot.pid)
            return
        if (reply.pid, reply.token) != (slot.pid, running.lease.token):
            self._foreign_reply(slot, reply)
            return
        self._starts.seen(index, running)
        self._reads.ran(reply.runtime_s)
        promoted = slot.queued
        slot.job = None
        slot.tasks += 1
        slot.answered = running.task + 1
        slot.rss = reply.rss
        self._after_job(slot, running, now, now if reply.ended is None else min(reply.ended, now))
        # A buffered job goes to the child at once; a claim waits until every reply that is
        # in has been read, so one round trip settles them and claims for all idle children.
        self._handout.hand_out()
        self._handout.fence_promoted(slot, promoted)
        lease = running.lease
        if reply.ok:
            self.settler.complete(lease, reply.value, reply.runtime_s, now)
        else:
            stop = None if running.stop is None else Cancel(running.stop)
            self.settler.fail(lease, reply.error, reply.runtime_s, stop)

    def child_skipped(self, index: int, task: int, token: str, now: float) -> None:
        """A child did not start its task number ``task``, which it held queued: its start-by
        time had passed (its lease was about to be fenced, or the job was withdrawn). It is
        handed out again, or given up as any held lease would be."""
        slot = self.slots[index]
        slot.answered = max(slot.answered, task + 1)
        skipped = slot.job
        if skipped is None or (skipped.task, skipped.lease.token) != (task, token):
            self._handout.hand_out()  # withdrawn while queued, and dealt with then
            return
        slot.job, promoted = None, slot.queued
        self._starts.skipped(index)
        self._book.unstarted(skipped.lease.job_id)
        self._after_job(slot, skipped, now, now)
        self._handout.unsend(skipped)
        self._handout.hand_out()
        self._handout.fence_promoted(slot, promoted)

    def child_progress(self, index: int, token: str, progress: Progress) -> None:
        """A child's running job reported progress: the next renew stores it."""
        running = self.slots[index].job
        if running is not None and running.lease.token == token:
            self._starts.seen(index, running)
            self._book.report(running.lease.job_id, progress)

    def child_exited(self, index: int, exitcode: int | None, now: float) -> None:
        """A child is gone: fail the job it ran (if any), then replace it unless stopping."""
        slot = self.slots[index]
        recovered = self._delegation.lost(slot, now)
        if recovered is not None:
            self._recover_claim(slot, *recovered, now)
        running, slot.job = slot.job, None
        queued, slot.queued = slot.queued, None
        unstarted = None  # promoted from its queue, but the child never started it
        if running is not None and not self._starts.settle(index, running):
            self._book.unstarted(running.lease.job_id)
            running, unstarted = None, running
        if self._failures.child_exited(slot, running, exitcode, now):
            self._fail()
        for task in (queued, unstarted):  # the child never answered about the job before it
            if task is not None:
                self._handout.unsend(task)
        if self.stopping.active or self.exit_code is not None:
            self.slots[index] = Slot(index, pid=slot.pid, state=SlotState.GONE)
        else:
            self._spawn(index)

    def quiet(self, now: float, *, filled: bool = False) -> None:
        """Nothing else to do: claim if it is time (the claim carries the batched completions;
        ``filled``: the caller just did, and nothing happened since).

        Completions no claim took are written once they waited ``CompletionWait.wait`` or no
        child is busy; a pool that write left idle then blocks in claim at once instead of
        sleeping out a busy-poll pause.
        """
        if not filled:
            self.fill(now)
            now = self._monotonic()  # that claim may have blocked
        settler = self.settler
        if not settler.batched:
            return
        # (Not due after FLUSH_AFTER_S, it is not due after the longer wait either.)
        due = settler.flush_due(now) and settler.flush_due(now, self._completions.wait(now))
        if due or not any(slot.busy for slot in self.slots):
            settler.flush()
            self.fill(self._monotonic())

    # -- time -----------------------------------------------------------------------------

    def run_timers(self, ticks: Iterable[Callable[[float], None]]) -> None:
        """Run the loop's timers (the scheduler's ``tick``), each after the lease duties at
        the time read then, as before a write to the queue: a timer writes too (a schedule's
        firing waits for lagging replicas as a completion does, once per Cluster master)."""
        for tick in ticks:
            self._keep_leases()
            tick(self._monotonic())

    def tick(self, now: float, *, early: bool = False) -> None:
        """Everything that is due: starts to report, fencing, renewals, limits, writes,
        heartbeat. ``early``: the loop woke for child events before ``next_wake``, so only
        the starts are looked at (the events set no timed duty sooner than their own time,
        and the next sleep's ``next_wake`` counts them), unless a stop is asked for."""
        if self._starts:
            self._starts.look()
        if early and not self.stopping.requested:
            return
        self._duties.due(now)
        self._enforce_limits(now)
        self._upkeep.reap(now)
        self.settler.retry_outbox(now)
        now = self._monotonic()  # that retry may have blocked
        self.heartbeat.beat(now, self._counters)
        self._stop(now)
        if not self.stopping.requested:
            for index in self._respawner.due(now):
                self._spawn(index)

    def next_wake(self, now: float) -> float:
        """The next moment ``tick`` or ``fill`` has something to do."""
        wakes = [
            self._book.next_wake(),
            self._upkeep.next_poll(),
            self.heartbeat.next_wake(),
            self.settler.next_wake(self._completions.wait(now)),
            self._starts.next_wake(now),
            self._upkeep.next_reap_at,
            self._failures.next_wake(self.slots),
            self.stopping.next_wake(),
            self._respawner.next_wake(),
        ]
        if not self.stopping.requested and self._wanted() > 0:
            idle = not self._book and all_idle(self.slots)
            wakes.append(self._claimer.next_wake(idle=idle))
        return min(wakes)

    def read_by(self, now: float) -> float:
        """When the children's answers must be read (``now``: as each comes; see ``reads``):
        as each comes while a stop, an outage or a child's claim for the pool is under way."""
        if self.stopping.requested or self._outage.down or self._outage.unconfirmed:
            return now
        return self._reads.read_by(self.slots, now)

    @property
    def finished(self) -> bool:
        """Whether the pool is done (stopped, drained in burst mode, or failed)."""
        return self.stopping.done

    # -- claiming -------------------------------------------------------------------------

    def fill(self, now: float, *, block: bool = True) -> None:
        """Give idle children work: buffered leases first, then a claim if it is time.

        With ``block`` and every child idle, the claim waits up to ``idle_wait`` for a job.
        """
        if self.stopping.requested:  # no new work once a stop is asked for
            return
        self._handout.hand_out()
        wanted = self._wanted()
        idle = block and not self._book and all_idle(self.slots)
        if wanted <= 0 or not self._claimer.due(now, idle=idle):
            return
        wait = min(self.config.idle_wait.total_seconds(), self._quiet_for(now)) if idle else 0.0
        looks = idle and self.stopping.looks_first  # a burst pool asks once without waiting
        if looks:
            wait = 0.0
        # Jobs for idle children start at once; the rest are held ahead, their attempts spent
        # only once they start (the buffer is empty while a child is idle: hand_out above).
        idle_children = sum(1 for slot in self.slots if slot.state is SlotState.IDLE)
        ahead = max(wanted - idle_children, 0)
        if self._children_claim and not looks:
            if idle and self._delegation.send(self.slots, wanted, ahead):
                return
            # Some children busy and the queues found empty: the idle children's claim waits
            # in one of them, where the parent would poll every BUSY_POLL_S. Not in a burst
            # pool yet to look: once idle, it asks without waiting, and stops if drained.
            waiting = idle_children and not idle and not self.buffer and self._claimer.found_empty
            waiting = waiting and not self.stopping.looks_first
            if waiting and self._delegation.send(self.slots, idle_children, 0):
                return
        self._claimed(self._claimer.claim(wanted, wait, now, ahead=ahead), now, idle, wait)

    def _claimed(self, leases: list[Lease], now: float, idle: bool, wait: float) -> None:
        """Hand out what a claim sent at ``now`` got, or note that it got nothing."""
        if leases:
            self.stopping.got_work()
            if self._outage.unconfirmed:  # else the queue holds every buffered lease
                self._handout.drop_replaced(leases)
            self.buffer.extend(leases)
            self._handout.hand_out()
            return
        self._claimer.came_back_empty(now, idle=idle, wait=wait)
        if idle:
            self.stopping.check_drained(
                now,
                holding=bool(self._book) or any(s.busy for s in self.slots),
                broken=self._quarantine.broken(now),
            )

    def child_claimed(
        self, index: int, leases: list[Lease], started: float | None, now: float
    ) -> None:
        """A child's claim for the pool got ``leases``; it runs the first, since ``started``
        (``None``: none)."""
        slot = self.slots[index]
        if not self._delegation.answers_for(slot):
            self.child_garbled(index, ValueError("a claim's answer from a child not claiming"))
            return
        leases, sent_at = self._delegation.claimed(slot, leases, now)
        if started is not None:
            self._handout.run_claimed(slot, leases.pop(0), min(started, now), now)
            self.stopping.got_work()
        if self.stopping.requested:  # none of the others starts now
            for lease in leases:
                self.settler.release(lease)
        elif leases or started is None:
            self._claimed(leases, sent_at, True, self.config.idle_wait.total_seconds())

    def child_claim_failed(self, index: int, error: Exception, now: float) -> None:
        """A child's claim for the pool raised ``error``: as if the parent's own had."""
        slot = self.slots[index]
        if not self._delegation.answers_for(slot):
            self.child_garbled(index, ValueError("a claim's failure from a child not claiming"))
            return
        self._delegation.failed(slot, error, now)

    def _recover_claim(self, slot: Slot, leases: list[Lease], started: bool, now: float) -> None:
        """The child making the pool's claim died before it told what it got: the leases
        asked again by the claim's token. If the child had ``started`` the first, that job is
        its job, failed with it as any dead child's; the others are handed out (or released
        while stopping)."""
        if started:
            self._handout.run_claimed(slot, leases.pop(0), now, now)
        for lease in leases:
            if self.stopping.requested:
                self.settler.release(lease)
            else:
                self.buffer.append(lease)

    def assign(self, slot: Slot, lease: Lease, now: float) -> bool:
        """Send ``lease``'s job to ``slot``'s idle child; ``False`` if it did not start there."""
        return self._handout.assign(slot, lease, now)

    def _withdraw_queued(self) -> None:
        """A call to the queue failed (the outage tells): ``HandOut.withdraw_queued``."""
        self._handout.withdraw_queued()

    def _wanted(self) -> int:
        return self._claimer.wanted(self.slots, len(self.buffer))

    def _quiet_for(self, now: float) -> float:
        flush_at = self.settler.next_wake(self._completions.wait(now))
        wakes = (self.heartbeat.next_wake(), flush_at, self._respawner.next_wake())
        return max(0.0, min(wakes) - now)

    def _after_job(self, slot: Slot, running: Running, now: float, ended: float) -> None:
        """The child's job ended at ``ended``: the job it held queued has started; a child
        due to be replaced is told to exit after the job it runs now, if any."""
        if slot.state is SlotState.DYING:
            return
        if running.term_at is not None:
            slot.state = SlotState.DYING  # it was told to die; it may yet
            if slot.queued is not None:  # and must not run the job it holds unwatched
                self._workforce.kill(slot.index)
                self._handout.drop_queued(slot, answered=True)
            return
        retiring = slot.state is SlotState.RETIRING
        if self._over_memory(slot):  # it starts no other job: the one it holds comes back
            queued, slot.queued = slot.queued, None
            if queued is not None:
                self._handout.unsend(queued)
        else:
            self._handout.promote(slot, ended, now)
        exit_wait = self._exit_wait
        if retiring:  # told to exit after its job
            if slot.job is None:
                slot.kill_at = now + exit_wait
            return
        slot.state = SlotState.IDLE if slot.job is None else SlotState.BUSY
        why = self._recycle_reason(slot.tasks, slot.rss)
        if why is not None:
            log.info("recycling child %s (%s)", slot.pid, why)
            self.settler.recycled(slot.pid, why)
            self._workforce.stop(slot.index)
            slot.state = SlotState.RETIRING
            if slot.job is None:
                slot.kill_at = now + exit_wait

    def _over_memory(self, slot: Slot) -> bool:
        """Whether ``slot``'s child was over its memory limit after its job: it then skips
        the job it holds queued (``child.Runner.serve``) and is replaced."""
        return self._max_rss is not None and slot.rss > self._max_rss

    def _report_start_of(self, job: Running, pid: int) -> None:
        self.settler.started(job.lease, pid, job.started_at)

    # -- the helpers' decisions, applied -------------------------------------------------

    def _spawn(self, index: int) -> None:
        spawned = self._respawner.spawn(index)
        self.slots[index] = spawned.slot
        if spawned.stop_pool:
            self._fail()

    def _fail(self) -> None:
        self.exit_code = 1
        self.stopping.request(cold=True)

    def child_garbled(self, index: int, error: Exception) -> None:
        """A frame on the child's pipe could not be read (``error``): some other process
        wrote on it (one a handler started with the pipe inherited), so the pipe cannot be
        trusted. Kill the child's group; its job fails as lost."""
        slot = self.slots[index]
        log.error(
            "child %s's pipe carried a frame it did not write (%s: %s); did a handler start a "
            "process that writes to its inherited descriptors? killing the child",
            *(slot.pid, type(error).__name__, error),
        )
        self._workforce.kill(index)

    def _foreign_reply(self, slot: Slot, reply: Reply) -> None:
        """Never settle a job with an answer that is not its child's about it: some other
        process spoke on the pipe (a copy a handler forked without exec), so the pipe cannot be
        trusted. Kill the child's group; its job fails as lost."""
        log.error(
            "pid %s answered on child %s's pipe for lease %s, not its job's (did a handler fork "
            "without exec?); killing the child",
            *(reply.pid, slot.pid, reply.token),
        )
        self._workforce.kill(slot.index)

    def _renew_now(self, now: float) -> bool:
        """``LeaseDuties.renew_now`` (made after the ``HandOut`` that is given this)."""
        return self._duties.renew_now(now)

    def _renew_unstarted(self, now: float) -> bool:
        """``LeaseDuties.renew_unstarted`` (made after the ``HandOut`` given this)."""
        return self._duties.renew_unstarted(now)

    def _forget(self, lease: Lease, reason: str) -> None:
        """``LeaseDuties.forget`` (made after the ``HandOut`` given this)."""
        self._duties.forget(lease, reason)

    def _keep_leases(self) -> None:
        """Before each write (the settler calls it): fence, and renew if due, at the time now.

        A write can block for long: one that ``REDIS_WAIT_REPLICAS`` makes wait for lagging
        replicas is refused only once the ``WAIT`` timeout (a sixth of the lease) ran out, while
        renewals answer at once. One turn of the loop can make several (an outbox retry, a
        claim carrying completions, a flush, a failure per reply read); a renewal left to the
        next turn's ``tick`` would come too late and the leases be fenced although the queue
        answers. Here a due renewal goes out at most one write late.
        """
        self._duties.due(self._monotonic())

    def _enforce_limits(self, now: float) -> None:
        for signal in self._failures.limits(self.slots, now):
            slot = self.slots[signal.slot]
            if signal.act is Act.TERMINATE:
                assert slot.job is not None
                self._workforce.terminate(slot.index)
                slot.job.term_at = now
            elif signal.act is Act.KILL:
                assert slot.job is not None
                self._workforce.kill(slot.index)
                slot.job.killed = True
            else:
                self._workforce.kill(slot.index)
                slot.kill_at = float("inf")

    def _stop(self, now: float) -> None:
        """Move a shutdown along: release the buffer, kill overdue jobs, finish when idle."""
        settler = self.settler
        step = self.stopping.step(now, self.slots)
        if step is None:
            return
        if step.begun:
            while self.buffer:
                settler.release(self.buffer.popleft())
            for slot in self.slots:  # jobs queued in children that will not start: released
                withdrawn = self._handout.withdraw(slot)
                if withdrawn is not None:
                    settler.release(withdrawn.lease)
        if step.overdue:
            self._kill_and_release()
            settler.give_up_outbox()
        claiming = self._delegation.claiming
        if step.grace_over and claiming is not None:  # its answer never came
            self._workforce.kill(claiming)
        settler.flush()
        if claiming is not None:  # the jobs its claim gets are released as they come
            return
        if not any(slot.busy for slot in self.slots) and not settler.outbox:
            self.stopping.finished()

    def _kill_and_release(self) -> None:
        busy = [slot for slot in self.slots if slot.job is not None]
        if busy:
            log.warning(
                "%s: killing %s job(s) still running, given back to the queue with their "
                "attempts unspent: %s",
                "stopping cold" if self.stopping.cold else "the stop's grace is over",
                len(busy),
                ", ".join(slot.job.lease.job_id for slot in busy if slot.job is not None),
            )
        for slot in busy:
            self._workforce.kill(slot.index)
        for slot in busy:
            running, slot.job = slot.job, None
            queued, slot.queued = slot.queued, None
            if queued is not None and queued.lease.job_id in self._book:
                self.settler.release(queued.lease)
            if running is None:  # a renewal before an earlier release forgot its lease
                continue
            self._starts.settle(slot.index, running)  # reported if it started
            slot.state = SlotState.DYING
            if self._workforce.wait_gone(slot.index, KILL_WAIT_S):
                self.settler.release(running.lease)
            else:
                self.settler.abandon(running.lease, "shutdown: its child could not be killed")


def _never_recycled(tasks: int, rss: int) -> str | None:
    """``PoolConfig.recycle_reason`` where no limit is set."""
    return None
