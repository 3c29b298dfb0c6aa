"""The pool's decisions, free of processes and sleeps: driven by events and ``now``.

The event loop (``foundry.application.pool``) feeds it child messages, child exits and the time; it
answers by claiming, settling jobs through the ``QueuePort`` and commanding a ``Workforce``.
Times are monotonic seconds, passed in, so tests drive it with a manual clock.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from random import Random

from loguru import logger

from foundry.application.pool.claims import ClaimTokens
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.failures import Failures
from foundry.application.pool.heartbeat import Heartbeat, PoolCounters
from foundry.application.pool.leases import LeaseBook
from foundry.application.pool.outage import Outage
from foundry.application.pool.outcome import PoolObserver
from foundry.application.pool.respawn import Respawner
from foundry.application.pool.settle import Settler
from foundry.application.pool.slots import Running, Slot, SlotState
from foundry.application.pool.stopping import Stopping
from foundry.application.pool.upkeep import Upkeep
from foundry.application.pool.wire import Reply, encode_task
from foundry.application.pool.workforce import Workforce
from foundry.application.registry import JobRegistry
from foundry.domain import FoundryError
from foundry.ports import ClaimRequest, Clock, Lease, QueuePort

#: While some children are busy, an empty queue is polled this often (seconds).
BUSY_POLL_S = 0.05
#: A child that dies this many times in a row before reporting ready stops the pool.
MAX_START_FAILURES = 3
#: The most jobs an adaptive prefetch holds ahead.
PREFETCH_MAX = 64


class Supervisor:
    """Decides what the pool does next; owns the leases, the slots and the settling."""

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
    ) -> None:
        self.config = config
        self.queue = queue
        self.registry = registry
        self.workforce = workforce
        self.clock = clock
        self.heartbeat = heartbeat
        self.book = LeaseBook(config.lease.total_seconds())
        self.claim_tokens = ClaimTokens(config.lease.total_seconds())
        self.counters = PoolCounters()
        self.settler = Settler(
            queue,
            clock=clock,
            book=self.book,
            counters=self.counters,
            observer=observer,
            rng=rng or Random(),
        )
        self.failures = Failures(self)
        self.stopping = Stopping(self)
        self.slots = [Slot(index) for index in range(config.concurrency)]
        self.buffer: deque[Lease] = deque()
        self.next_claim_at = 0.0  # no claim before (an idle wait ended, or claims failing)
        self.poll_at = 0.0  # no busy poll before (the queue was empty while children ran)
        self.start_failures = 0
        self.outage = Outage()
        self.upkeep = Upkeep(self)
        self.respawner = Respawner(self)
        self.exit_code: int | None = None

    # -- events ---------------------------------------------------------------------------

    def start(self) -> None:
        """Fork every child."""
        for slot in self.slots:
            self.spawn(slot)

    def spawn(self, slot: Slot) -> None:
        """(Re)start the child of ``slot`` (a failed fork is retried after a backoff)."""
        self.respawner.spawn(slot)

    def child_ready(self, index: int, now: float) -> None:
        """A child finished its start-up and takes jobs."""
        slot = self.slots[index]
        if slot.state is SlotState.STARTING:
            slot.state = SlotState.IDLE
            self.start_failures = 0
            self.fill(now)

    def child_replied(self, index: int, reply: Reply, now: float) -> None:
        """A child finished its job: hand it the next one, then settle this one."""
        slot = self.slots[index]
        running = slot.job
        if running is None:
            logger.warning("child {} answered for a job it no longer holds; ignored", slot.pid)
            return
        slot.job = None
        slot.tasks += 1
        self._after_job(slot, running, reply, now)
        # A buffered job goes to the child at once; a claim waits until every reply that is
        # in has been read, so one round trip settles them and claims for all idle children.
        self._hand_out(now)
        lease = running.lease
        if reply.ok:
            self.settler.complete(lease, reply.value, reply.runtime_s, now)
        else:
            self.settler.fail(lease, reply.error, reply.runtime_s)

    def child_exited(self, index: int, exitcode: int | None, now: float) -> None:
        """A child is gone: fail the job it ran (if any), then replace it unless stopping."""
        slot = self.slots[index]
        self.failures.child_exited(slot, exitcode, now)
        if slot.state is SlotState.STARTING:
            self.start_failures += 1
        if self.start_failures >= MAX_START_FAILURES:
            logger.error(
                "{} children in a row died before they were ready; check child_init and the "
                "handlers' imports. Stopping the pool",
                self.start_failures,
            )
            self.exit_code = 1
            self.stopping.request(cold=True)
        if self.stopping.active or self.exit_code is not None:
            self.slots[index] = Slot(index, pid=slot.pid, state=SlotState.GONE)
        else:
            self.spawn(slot)

    def quiet(self, now: float) -> None:
        """Nothing else to do: claim if it is time (the claim carries the batched completions).

        Completions no claim took are written once they waited ``FLUSH_AFTER_S`` or no child
        is busy; a pool that write left idle then blocks in claim at once instead of sleeping
        out a busy-poll pause.
        """
        self.fill(now)
        settler = self.settler
        if settler.batched and (settler.flush_due(now) or not any(s.busy for s in self.slots)):
            settler.flush()
            self.fill(now)

    # -- time -----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Everything that is due: fencing first, then renewals, limits, writes, heartbeat."""
        self.failures.fence(now)
        self.upkeep.renew(now)
        self.failures.enforce_limits(now)
        self.upkeep.reap(now)
        self.settler.retry_outbox(now)
        self.heartbeat.beat(now, self.counters)
        self.stopping.tick(now)
        self.respawner.tick(now)

    def next_wake(self, now: float) -> float:
        """The next moment ``tick`` or ``fill`` has something to do."""
        wakes = [
            self.book.next_wake(),
            self.heartbeat.next_wake(),
            self.settler.next_wake(),
            self.upkeep.next_reap_at,
            self.failures.next_wake(),
            self.stopping.next_wake(),
            self.respawner.next_wake(),
        ]
        if not self.stopping.requested and self._wanted() > 0:
            wakes.append(max(self.next_claim_at, self.poll_at))
        return min(wakes)

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
        self._hand_out(now)
        wanted = self._wanted()
        idle = block and not self.book and self._all_idle()
        # The busy-poll pause is for a pool that cannot block in claim; once idle it blocks at
        # once, or a job sent now would sit out the pause (up to 50 ms instead of ~1 ms).
        due = now >= self.next_claim_at and (idle or now >= self.poll_at)
        if wanted <= 0 or not due:
            return
        wait = min(self.config.idle_wait.total_seconds(), self._quiet_for(now)) if idle else 0.0
        leases = self._claim(wanted, wait, now)
        if leases:
            self.buffer.extend(leases)
            self._hand_out(now)
            return
        if not idle:
            self.poll_at = now + BUSY_POLL_S
            return
        self.next_claim_at = max(self.next_claim_at, now + wait)
        if self.config.burst and self._drained():
            self.stopping.drained()

    def assign(self, slot: Slot, lease: Lease, now: float) -> bool:
        """Send ``lease``'s job to ``slot``'s child; ``False`` if it did not start there."""
        job = lease.job
        if job.name not in self.registry:
            self.failures.unknown_handler(lease)
            return False
        started_at = self.clock.now()
        slot.job = Running(lease, started_at, now, now + job.timeout.total_seconds())
        slot.state = SlotState.BUSY
        self.workforce.fence(slot.index, self.book.child_deadline(lease.job_id))
        if not self.workforce.send(slot.index, encode_task(lease)):
            slot.job = None
            slot.state = SlotState.DYING
            self.settler.release(lease)
            return False
        self.settler.started(lease, slot.pid, started_at)
        return True

    def _hand_out(self, now: float) -> None:
        for slot in self.slots:
            while slot.state is SlotState.IDLE and self.buffer:
                self.assign(slot, self.buffer.popleft(), now)

    def _wanted(self) -> int:
        """How many jobs to claim now: none while the prefetch buffer is over half full and
        no child waits, so claims come in batches of about half the prefetch."""
        idle = sum(1 for slot in self.slots if slot.state is SlotState.IDLE)
        prefetch = self._prefetch()
        if not idle and len(self.buffer) > prefetch // 2:
            return 0
        return idle + prefetch - len(self.buffer)

    def _prefetch(self) -> int:
        """The configured prefetch, or more for short jobs: as many as the children finish
        within ``prefetch_window`` at the mean run time so far (at most ``PREFETCH_MAX``)."""
        config, counters = self.config, self.counters
        window = config.prefetch_window.total_seconds()
        if not window or not counters.processed or not counters.runtime_s:
            return config.prefetch
        mean = counters.runtime_s / counters.processed
        auto = min(PREFETCH_MAX, int(config.concurrency * window / mean))
        return max(config.prefetch, auto)

    def _all_idle(self) -> bool:
        """No child runs or prepares a job: each is idle, or its slot waits for a new fork."""
        states = [slot.state for slot in self.slots]
        waiting = (SlotState.IDLE, SlotState.EMPTY)
        return SlotState.IDLE in states and all(state in waiting for state in states)

    def _quiet_for(self, now: float) -> float:
        wakes = (self.heartbeat.next_wake(), self.settler.next_wake(), self.respawner.next_wake())
        return max(0.0, min(wakes) - now)

    def _claim(self, limit: int, wait: float, now: float) -> list[Lease]:
        config = self.config
        token, sent_at = self.claim_tokens.next(now)
        request = ClaimRequest(
            config.queues,
            lease=config.lease,
            limit=limit,
            wait=_seconds(wait),
            claim_token=token,
            worker=self.heartbeat.id,
        )
        try:
            # Batched completions go first: a job done here must not re-run because this
            # worker died holding its completion (a poison job claimed next may kill it).
            leases = self.settler.flush_and_claim(request)
        except FoundryError as error:
            self.claim_tokens.unanswered(token, sent_at)
            self.outage.failed("claim", error, now)
            self.next_claim_at = now + config.idle_wait.total_seconds()
            return []
        self.claim_tokens.answered()
        self.outage.ok(now)
        self.book.hold(leases, sent_at)
        return leases

    def _drained(self) -> bool:
        if self.book or any(slot.busy for slot in self.slots):
            return False
        try:
            stats = [self.queue.stats(name) for name in self.config.queues]
        except FoundryError as error:
            logger.error("cannot read queue sizes to end the burst: {}", error)
            return False
        return all(s.pending == 0 or s.paused for s in stats)

    def _after_job(self, slot: Slot, running: Running, reply: Reply, now: float) -> None:
        if running.term_at is not None:
            slot.state = SlotState.DYING  # it was told to die; it may yet
            return
        slot.state = SlotState.IDLE
        limit_tasks = self.config.max_tasks_per_child
        limit_rss = self.config.max_rss_bytes
        recycle_tasks = limit_tasks is not None and slot.tasks >= limit_tasks
        recycle_rss = limit_rss is not None and reply.rss > limit_rss
        if recycle_tasks or recycle_rss:
            why = "max tasks" if recycle_tasks else f"RSS {reply.rss >> 20} MiB"
            logger.info("recycling child {} ({})", slot.pid, why)
            self.workforce.stop(slot.index)
            slot.state = SlotState.RETIRING
            slot.kill_at = now + self.config.term_grace.total_seconds() + 5.0


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
