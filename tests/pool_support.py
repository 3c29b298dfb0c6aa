"""Helpers for the pool's tests: a recording workforce and a supervisor driven by hand."""

from __future__ import annotations

import errno
import itertools
from collections.abc import Callable, Sequence
from datetime import timedelta
from random import Random
from typing import Any, TypeVar

import attrs

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.outcome import Outcome
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.heartbeat import Heartbeat
from foundry.application.pool.supervisor import Supervisor
from foundry.application.pool.wire import Reply, Task, decode_task
from foundry.application.registry import JobRegistry
from foundry.domain import (
    Decision,
    ErrorInfo,
    Job,
    JobState,
    QueueBroken,
    QueueUnavailable,
    WriteNotReplicated,
)
from foundry.ports import ClaimRequest, Lease, WorkerRegistry

#: An idle wait short enough that a test's claim never blocks for long.
FAST = timedelta(milliseconds=1)
#: How long a write that waits for lagging replicas blocks before it is refused: Redis's WAIT
#: timeout under ``REDIS_WAIT_REPLICAS``, a sixth of the default 30 s lease.
WAIT_S = 5.0

T = TypeVar("T")


class FakeWorkforce:
    """Children that exist only as records of what the supervisor told them."""

    def __init__(self) -> None:
        self.pids = itertools.count(1000)
        self.commands: list[tuple[str, int]] = []
        self.tasks: list[tuple[int, Task]] = []
        self.broken: set[int] = set()
        self.fences: list[tuple[int, float]] = []
        self.starts_by: dict[tuple[int, int], float] = {}  # (slot, task): its start-by time
        self.unread: set[int] = set()  # slots whose child wrote a frame not read yet
        self.begun: dict[int, int] = {}  # slot: its child's last started task number + 1
        self.failing_forks = 0  # the next this many spawns fail as a fork under EAGAIN does

    def spawn(self, slot: int) -> int:
        self.commands.append(("spawn", slot))
        self.begun.pop(slot, None)
        if self.failing_forks:
            self.failing_forks -= 1
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return next(self.pids)

    def send(self, slot: int, frame: bytes) -> bool:
        if slot in self.broken:
            return False
        self.tasks.append((slot, decode_task(frame)))
        return True

    def stop(self, slot: int) -> None:
        self.commands.append(("stop", slot))

    def interrupt(self, slot: int) -> None:
        self.commands.append(("interrupt", slot))

    def terminate(self, slot: int) -> None:
        self.commands.append(("terminate", slot))

    def kill(self, slot: int) -> None:
        self.commands.append(("kill", slot))

    def fence(self, slot: int, at: float) -> None:
        self.fences.append((slot, at))

    def start_by(self, slot: int, task: int, at: float) -> None:
        self.starts_by[slot, task] = at

    def started(self, slot: int) -> int:
        return self.begun.get(slot, 0)

    def answered(self, slot: int) -> bool:
        return slot in self.unread

    def wait_gone(self, slot: int, timeout: float) -> bool:
        self.commands.append(("wait_gone", slot))
        return True

    def told(self, command: str) -> list[int]:
        """The slots that got ``command``, in order."""
        return [slot for name, slot in self.commands if name == command]


class FlakyQueue(MemoryQueue):
    """A memory queue whose claims, renewals, reaps and completions fail while ``down``."""

    down = False

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.claims: list[ClaimRequest] = []  # each claim sent, in order

    def claim(self, request: ClaimRequest) -> list[Lease]:
        self.claims.append(request)
        if self.down:
            raise QueueUnavailable("the queue is down (test)")
        return super().claim(request)

    def reap(self) -> int:
        if self.down:
            raise QueueUnavailable("the queue is down (test)")
        return super().reap()

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        if self.down:
            raise QueueUnavailable("the queue is down (test)")
        return super().renew(leases, duration)

    def complete(self, lease: Lease, result: Any = None) -> None:
        if self.down:
            raise QueueUnavailable("the queue is down (test)")
        super().complete(lease, result)

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool | QueueBroken]:
        if self.down:
            raise QueueUnavailable("the queue is down (test)")
        return super().complete_many(leases, results)


class BatchingQueue(FlakyQueue):
    """A flaky memory queue that counts its batched completions."""

    batches: int = 0

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool | QueueBroken]:
        done = super().complete_many(leases, results)
        self.batches += 1
        return done


class CombiningQueue(BatchingQueue):
    """A batching memory queue that also completes and claims in one call (as RedisQueue)."""

    combined: int = 0

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.tokens: list[str] = []  # the claim token of every call, failed ones too

    def claim(self, request: ClaimRequest) -> list[Lease]:
        self.tokens.append(request.claim_token or "")
        return super().claim(request)

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool | QueueBroken], list[Lease]]:
        if self.down:
            self.tokens.append(request.claim_token or "")
            raise QueueUnavailable("the queue is down (test)")
        self.combined += 1
        self.batches -= 1  # counted as one combined call, not a batch
        return super().complete_and_claim(leases, results, request)


#: How long a call blocks before it fails while the queue is down (a reply timeout).
REPLY_TIMEOUT_S = 3.0


class StalledQueue(FlakyQueue):
    """A flaky memory queue whose calls named in ``stalls`` (``claim``, ``renew``), while
    ``down``, block ``REPLY_TIMEOUT_S`` (the clock moves) before they fail, as a Redis that
    stopped answering makes them; it records when each claim and renewal was sent."""

    stalls: frozenset[str] = frozenset()

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self._stall_clock = clock
        self.claimed_at: list[float] = []
        self.renewed_at: list[float] = []

    def claim(self, request: ClaimRequest) -> list[Lease]:
        self.claimed_at.append(self._send("claim"))
        return super().claim(request)

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        self.renewed_at.append(self._send("renew"))
        return super().renew(leases, duration)

    def _send(self, call: str) -> float:
        """When ``call`` was sent; the clock moves past its reply timeout if it stalls."""
        sent = self._stall_clock.now().timestamp()
        if self.down and call in self.stalls:
            self._stall_clock.advance(timedelta(seconds=REPLY_TIMEOUT_S))
        return sent


class StalledClaims(StalledQueue):
    """Claims stall while the queue is down."""

    stalls = frozenset({"claim"})


class StalledRenewals(StalledQueue):
    """Renewals stall while the queue is down."""

    stalls = frozenset({"renew"})


class LaggingQueue(FlakyQueue):
    """A flaky memory queue whose replicas lag while ``lagging``, as under
    ``REDIS_WAIT_REPLICAS``: a write that waits for them (a completion, a failure, a claim
    carrying completions) is applied, then blocks ``WAIT_S`` (the clock moves) and is refused.
    Claims alone, renewals, releases and reaps do not wait and answer at once."""

    lagging = False

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self._lag_clock = clock
        self._writing = False  # inside a durable write (complete_and_claim calls two)
        self.blocked_at: list[float] = []  # when each refused write started
        self.renewed_at: list[float] = []  # when each renewal was sent

    def renew(self, leases: Sequence[Lease], duration: timedelta) -> list[Lease | None]:
        self.renewed_at.append(self._lag_clock.now().timestamp())
        return super().renew(leases, duration)

    def complete(self, lease: Lease, result: Any = None) -> None:
        self._durable(lambda: super(LaggingQueue, self).complete(lease, result))

    def complete_many(
        self, leases: Sequence[Lease], results: Sequence[Any] | None = None
    ) -> list[bool | QueueBroken]:
        return self._durable(lambda: super(LaggingQueue, self).complete_many(leases, results))

    def complete_and_claim(
        self, leases: Sequence[Lease], results: Sequence[Any], request: ClaimRequest
    ) -> tuple[list[bool | QueueBroken], list[Lease]]:
        return self._durable(
            lambda: super(LaggingQueue, self).complete_and_claim(leases, results, request)
        )

    def fail(self, lease: Lease, error: ErrorInfo, decision: Decision) -> JobState:
        return self._durable(lambda: super(LaggingQueue, self).fail(lease, error, decision))

    def _durable(self, write: Callable[[], T]) -> T:
        if not self.lagging or self._writing:
            return write()
        self._writing = True
        try:
            write()
        finally:
            self._writing = False
        self.blocked_at.append(self._lag_clock.now().timestamp())
        self._lag_clock.advance(WAIT_S)
        raise WriteNotReplicated("written, but the replicas did not confirm it in time (test)")


@attrs.define
class Events:
    """A ``PoolObserver`` that remembers what it saw."""

    started: list[tuple[str, int]] = attrs.Factory(list)
    finished: list[tuple[str, Outcome]] = attrs.Factory(list)
    recycled: list[tuple[int, str]] = attrs.Factory(list)
    renewals: list[tuple[int, int]] = attrs.Factory(list)

    def job_started(self, lease: Lease, child_pid: int, started_at: Any) -> None:
        self.started.append((lease.job_id, child_pid))

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        self.finished.append((lease.job_id, outcome))

    def child_recycled(self, child_pid: int, reason: str) -> None:
        self.recycled.append((child_pid, reason))

    def leases_renewed(self, kept: int, lost: int) -> None:
        self.renewals.append((kept, lost))


registry = JobRegistry()


@registry.job(name="work", timeout=timedelta(seconds=60))
def work(**_: Any) -> None:
    """A handler the supervisor tests name (their children are fake)."""


class Harness:
    """A supervisor over a fake workforce and a memory queue, on one manual clock."""

    def __init__(
        self,
        config: PoolConfig | None = None,
        workers: WorkerRegistry | None = None,
        queue: type[FlakyQueue] = FlakyQueue,
        *,
        after: Harness | None = None,
    ):
        """A new pool; ``after``: on that pool's queue and clock (the pool it replaces)."""
        self.clock = ManualClock() if after is None else after.clock
        self.queue = queue(self.clock) if after is None else after.queue
        self.workforce = FakeWorkforce()
        self.events = Events()
        self.began: list[Lease] = []  # the leases whose jobs the children started, in order
        self._taken: set[tuple[int, int, int]] = set()  # (slot, pid, task) taken up
        # Renewals at the lease's cadence only (the tests of cancels ask for cancel_check).
        self.config = config or PoolConfig(idle_wait=timedelta(milliseconds=1), cancel_check=None)
        heartbeat = Heartbeat(
            workers, self.clock, self.config.queues, self.config.concurrency, timedelta(seconds=5)
        )
        self.sup = Supervisor(
            self.queue,
            registry,
            self.config,
            self.workforce,
            clock=self.clock,
            heartbeat=heartbeat,
            observer=self.events,
            rng=Random(7),
            monotonic=lambda: self.now,
        )

    @property
    def now(self) -> float:
        return self.clock.now().timestamp()

    def enqueue(self, count: int = 1, **fields: Any) -> list[str]:
        jobs = [Job(fields.pop("name", "work"), **fields) for _ in range(count)]
        self.queue.enqueue_many(jobs)
        return [job.id for job in jobs]

    def start(self) -> None:
        """Fork (pretend) and report every child ready; they claim at once."""
        self.sup.start()
        for slot in self.sup.slots:
            self.sup.child_ready(slot.index, self.now)
        self.children_act()

    def advance(self, seconds: float) -> None:
        """Move time and let the supervisor act on it."""
        self.clock.advance(timedelta(seconds=seconds))
        self.sup.tick(self.now)
        self.sup.fill(self.now)
        self.children_act()

    def children_act(self) -> None:
        """Each child, as a real one would, takes up the task the parent believes it runs:
        it starts it (``began``) unless its start-by time has passed, else answers SKIPPED."""
        for slot in self.sup.slots:
            while (job := slot.job) is not None and (
                slot.index,
                slot.pid,
                job.task,
            ) not in self._taken:
                self._taken.add((slot.index, slot.pid, job.task))
                at = self.workforce.starts_by.get((slot.index, job.task), float("inf"))
                if self.now < at:
                    self.began.append(job.lease)
                    self.workforce.begun[slot.index] = job.task + 1
                    break
                self.sup.child_skipped(slot.index, job.task, job.lease.token, self.now)

    def take_up_queued(self, index: int) -> None:
        """``index``'s child, having answered about its job, starts the one it holds queued
        before the parent reads that answer, as a real child does, if its start-by time has
        not passed."""
        slot = self.sup.slots[index]
        job = slot.queued
        if job is None or (index, slot.pid, job.task) in self._taken:
            return
        if self.now < self.workforce.starts_by.get((index, job.task), float("inf")):
            self._taken.add((index, slot.pid, job.task))
            self.began.append(job.lease)
            self.workforce.begun[index] = job.task + 1

    def held(self) -> list[Lease]:
        """The leases the pool holds whose jobs have not started: those queued in children
        (sent while they run a job) first, as they left the buffer first, then the buffer."""
        queued = [slot.queued.lease for slot in self.sup.slots if slot.queued is not None]
        return queued + list(self.sup.buffer)

    def running(self, slot: int) -> str:
        """The job id running in ``slot``."""
        job = self.sup.slots[slot].job
        assert job is not None
        return job.lease.job_id

    def answer(
        self, slot: int, ok: bool = True, value: Any = None, runtime: float = 0.01, rss: int = 0
    ) -> Reply:
        """The reply ``slot``'s child sends about the job it runs."""
        child = self.sup.slots[slot]
        token = child.job.lease.token if child.job is not None else ""
        return Reply(ok, value, runtime, rss, child.pid, token)

    def reply(self, slot: int, ok: bool = True, value: Any = None, runtime: float = 0.01) -> None:
        """``slot``'s child answers and moves on to the job it holds queued (if it may start
        it: else it skips it once the parent has read the answer); then the pool's loop
        turns (it claims for idle children once every reply that is in has been read)."""
        answer = self.answer(slot, ok, value, runtime)
        self.take_up_queued(slot)
        self.sup.child_replied(slot, answer, self.now)
        self.children_act()
        self.sup.fill(self.now)
        self.children_act()

    def fail(self, slot: int, error: BaseException) -> None:
        self.reply(slot, ok=False, value=ErrorInfo.from_exception(error))
