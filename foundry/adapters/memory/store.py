"""The memory queue's state: job entries and, per queue, ready/delayed heaps and dead letters;
unique keys; and ``MemoryStore``, which holds them all under the queue's one lock.

Only ``MemoryStore`` reads the clock; the rest takes ``now``. Heaps are invalidated lazily: a
heap item counts only while its entry is still in the state (and has the seq or run time) the
item was pushed with.
"""

from __future__ import annotations

import heapq
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs

from foundry.adapters.memory.limits import Limiter, from_ms
from foundry.domain import (
    AfterFailure,
    ConfigurationError,
    ErrorInfo,
    JobState,
    Progress,
    UniqueSpec,
    UniqueUntil,
)
from foundry.ports import Clock

#: The last thing a lease token did to its job, so a re-send of it is recognised (Q8).
COMPLETE = "complete"
FAIL = "fail"
RELEASE = "release"
LOST = "lost"


#: A parked job's run time: none of its own (a slot or a rate turn decides), shown as the
#: latest moment, as on Redis.
PARKED_AT = datetime.max.replace(tzinfo=UTC)


@attrs.define(slots=True, eq=False)
class Entry:
    """One stored job: its encoded immutable part plus the small mutable part."""

    job_id: str
    queue: str
    blob: bytes
    priority: int
    max_attempts: int
    unique: UniqueSpec | None
    state: JobState
    seq: int
    enqueued_at: datetime
    run_at: datetime
    attempts: int = 0
    fence: int = 0  # the fencing token of its latest claim
    worker: str = ""
    token: str | None = None
    deadline: datetime | None = None
    last_token: str | None = None
    last_op: str | None = None
    last_state: JobState | None = None
    errors: list[ErrorInfo] = attrs.Factory(list)
    result: bytes | None = None
    reason: str | None = None
    finished_at: datetime | None = None
    stop: str | None = None  # why a cancel asked this running job to stop
    progress: Progress | None = None  # the last progress its handler reported
    ahead: bool = False  # its lease was claimed ahead and its start is not reported yet
    unstarted_lapses: int = 0  # leases that lapsed while ahead (attempts given back)

    def holds(self, token: str) -> bool:
        """Whether ``token`` is this job's current lease."""
        return self.state is JobState.ACTIVE and self.token == token

    def ended(self, token: str, op: str) -> bool:
        """Whether ``token`` already applied ``op`` to this job (a re-send, Q8)."""
        return self.last_token == token and self.last_op == op

    def end_lease(self, op: str, state: JobState) -> None:
        """Forget the current lease, remembering how it ended."""
        self.last_token, self.last_op, self.last_state = self.token, op, state
        self.token = None
        self.deadline = None
        self.ahead = False


@attrs.define(slots=True, eq=False)
class QueueState:
    """Everything stored for one queue."""

    name: str
    seq: int = 0
    paused: bool = False
    listed: bool = False  # paused once: ``queues()`` lists it before its first job
    jobs: dict[str, Entry] = attrs.Factory(dict)
    active: dict[str, Entry] = attrs.Factory(dict)
    ready: list[tuple[int, int, str]] = attrs.Factory(list)
    delayed: list[tuple[datetime, int, str]] = attrs.Factory(list)
    dead: dict[str, None] = attrs.Factory(dict)  # insertion order: oldest first
    waiting: dict[str, tuple[int, AfterFailure]] = attrs.Factory(dict)  # id: (count, rule)
    dependants: dict[str, list[str]] = attrs.Factory(dict)  # id: the jobs waiting for it
    counts: Counter[JobState] = attrs.Factory(Counter)
    completed: int = 0
    failed: int = 0
    dead_trimmed: int = 0
    stale_rejected: int = 0
    fence: int = 0  # the last fencing token a claim gave, as Redis keeps it in meta
    limits: Limiter = attrs.Factory(Limiter)

    def next_seq(self) -> int:
        """The next sequence number of this queue (FIFO within a priority)."""
        self.seq += 1
        return self.seq

    def add(self, entry: Entry, now: datetime) -> None:
        """Store a new entry, ready or delayed by its run time."""
        self.jobs[entry.job_id] = entry
        self.counts[entry.state] += 1
        self.schedule(entry, entry.run_at, now)

    def schedule(self, entry: Entry, run_at: datetime, now: datetime) -> None:
        """Make the entry pending: ready if ``run_at`` has come, else delayed until then."""
        entry.run_at = run_at
        if run_at <= now:
            self.move(entry, JobState.READY)
            heapq.heappush(self.ready, (-entry.priority, entry.seq, entry.job_id))
        else:
            self.move(entry, JobState.DELAYED)
            heapq.heappush(self.delayed, (run_at, entry.seq, entry.job_id))

    def move(self, entry: Entry, state: JobState) -> None:
        """Change the entry's state, keeping the counts and the active index right; an entry
        leaving ``ACTIVE`` gives its limit slot back, and the job parked for it is ready; one
        leaving its park another way (cancelled, deleted) is no longer waited for; and one
        made ready by a freed slot, cancelled or deleted before a claim took it, hands that
        slot to the next job parked; one holding its key's rate turn, cancelled, deleted or
        buried (its record unreadable), hands the turn to the next job in line."""
        self.counts[entry.state] -= 1
        self.counts[state] += 1
        if self.active.pop(entry.job_id, None) is not None and state is not JobState.ACTIVE:
            self._unpark(self.limits.free(entry.job_id))
        elif entry.state is JobState.DELAYED and state is not JobState.DELAYED:
            self.limits.unparked(entry.job_id)  # cancelled or deleted while parked, if it was
        elif entry.state is JobState.READY and state is JobState.CANCELLED:
            self._unpark(self.limits.pass_on(entry.job_id))  # a freed slot's job, unclaimed
        if state is JobState.CANCELLED or state is JobState.DEAD:
            self.give_turn(self.limits.dropped(entry.job_id))
        if state is JobState.ACTIVE:
            self.active[entry.job_id] = entry
        self.dead.pop(entry.job_id, None)
        if state is JobState.DEAD:
            self.dead[entry.job_id] = None
        entry.state = state

    def park(self, entry: Entry) -> None:
        """Set the entry aside until its key frees a slot or hands it its rate turn (counted
        as delayed, with no run time of its own: the latest moment, as the other backends
        show it)."""
        entry.run_at = PARKED_AT
        self.move(entry, JobState.DELAYED)

    def give_turn(self, handed: tuple[str, int] | None) -> None:
        """Delay the job set aside in line for its key's rate turn (``Limiter.next_turn``'s
        ``(job id, ms)``) until the turn; the claim promotes it when the turn comes."""
        entry = self.jobs.get(handed[0]) if handed is not None else None
        if handed is not None and entry is not None and entry.state is JobState.DELAYED:
            entry.run_at = from_ms(handed[1])
            heapq.heappush(self.delayed, (entry.run_at, entry.seq, entry.job_id))

    def _unpark(self, job_id: str | None) -> None:
        entry = self.jobs.get(job_id) if job_id is not None else None
        if entry is not None and entry.state is JobState.DELAYED:
            entry.run_at = entry.enqueued_at
            self.move(entry, JobState.READY)
            heapq.heappush(self.ready, (-entry.priority, entry.seq, entry.job_id))

    def remove(self, entry: Entry) -> None:
        """Forget the entry entirely (delete, purge, trim, expiry)."""
        self.move(entry, JobState.CANCELLED)
        self.counts[JobState.CANCELLED] -= 1
        del self.jobs[entry.job_id]

    def promote(self, now: datetime) -> None:
        """Move every delayed job whose run time has come to ready (order kept by seq)."""
        while self.delayed and self.delayed[0][0] <= now:
            run_at, seq, job_id = heapq.heappop(self.delayed)
            entry = self.jobs.get(job_id)
            if entry and entry.state is JobState.DELAYED and entry.seq == seq:
                self.schedule(entry, run_at, now)

    def pop_ready(self) -> Entry | None:
        """Take the ready job that runs next: highest priority, then lowest seq."""
        while self.ready:
            _, seq, job_id = heapq.heappop(self.ready)
            entry = self.jobs.get(job_id)
            if entry and entry.state is JobState.READY and entry.seq == seq:
                return entry
        return None

    def expired_leases(self, now: datetime) -> list[Entry]:
        """Active jobs whose lease deadline has passed (strictly before ``now``), by deadline,
        then job id, as every backend reaps them."""
        expired = [
            (e.deadline, e.job_id, e)
            for e in self.active.values()
            if e.deadline is not None and e.deadline < now
        ]
        return [entry for _, _, entry in sorted(expired)]  # ids are unique: entries never compared

    def oldest_dead(self) -> Entry:
        """The dead letter that died first."""
        return self.jobs[next(iter(self.dead))]


@attrs.define(slots=True)
class UniqueHold:
    """A unique key held by ``job_id`` until ``expires_at`` at the latest."""

    job_id: str
    expires_at: datetime


@attrs.define(slots=True)
class UniqueKeys:
    """Unique keys per queue: who holds each, and until when."""

    holds: dict[tuple[str, str], UniqueHold] = attrs.Factory(dict)

    def holder(self, queue: str, key: str, now: datetime) -> str | None:
        """The id of the job holding ``key`` in ``queue``, if the hold has not expired."""
        hold = self.holds.get((queue, key))
        if hold is None:
            return None
        if hold.expires_at <= now:
            del self.holds[(queue, key)]
            return None
        return hold.job_id

    def take(self, queue: str, job_id: str, spec: UniqueSpec, now: datetime) -> None:
        """Hold ``spec.key`` for ``job_id`` for at most ``spec.ttl``."""
        self.holds[(queue, spec.key)] = UniqueHold(job_id, now + spec.ttl)

    def release(self, entry: Entry, at: UniqueUntil | None = None) -> None:
        """Free the entry's key if it still holds it (and ``at`` is when its spec frees it)."""
        spec = entry.unique
        if spec is None or (at is not None and spec.until is not at):
            return
        hold = self.holds.get((entry.queue, spec.key))
        if hold is not None and hold.job_id == entry.job_id:
            del self.holds[(entry.queue, spec.key)]


@attrs.define(slots=True)
class Expiring:
    """Keys with an expiry time, popped in time order once due."""

    heap: list[tuple[datetime, str, str]] = attrs.Factory(list)

    def add(self, expires_at: datetime, queue: str, key: str) -> None:
        """Remember that ``key`` of ``queue`` expires at ``expires_at``."""
        heapq.heappush(self.heap, (expires_at, queue, key))

    def due(self, now: datetime) -> list[tuple[str, str]]:
        """Pop every (queue, key) whose time has come."""
        out = []
        while self.heap and self.heap[0][0] <= now:
            _, queue, key = heapq.heappop(self.heap)
            out.append((queue, key))
        return out


#: Ended jobs whose record is forgotten ``completed_ttl`` after they ended.
_KEPT_FOR_A_TIME = (JobState.COMPLETED, JobState.CANCELLED)


def age_limit(now: datetime, max_age: timedelta | None) -> datetime | None:
    """The oldest death time a dead letter may have and still be kept."""
    return None if max_age is None else now - max_age


class Settled(threading.Condition):
    """The store's ``settled`` condition, which also calls its ``listeners`` (the event loops
    awaiting a job's end, ``AsyncMemoryQueue.wait``) each time it is notified."""

    def __init__(self, lock: threading.RLock) -> None:
        super().__init__(lock)
        self.listeners: set[Callable[[], None]] = set()

    def notify_all(self) -> None:
        """Wake the threads waiting, then call every listener (under the store's lock)."""
        super().notify_all()
        for listener in tuple(self.listeners):
            listener()


class MemoryStore:
    """Every queue's state, the unique keys and the completed records' expiry, under one lock.

    ``cond`` is that lock (a ``Condition`` over an ``RLock``): every operation holds it, and a
    waiting claim waits on it for the operations that make jobs ready to notify it.
    ``settled``, over the same lock, is notified when a job ends (completed, dead, forgotten).
    """

    def __init__(self, clock: Clock, completed_ttl: timedelta) -> None:
        if completed_ttl <= timedelta(0):
            raise ConfigurationError(f"completed_ttl must be positive, got {completed_ttl}")
        self.clock = clock
        lock = threading.RLock()
        self.cond = threading.Condition(lock)
        self.settled = Settled(lock)
        self.unique = UniqueKeys()
        self._queues: dict[str, QueueState] = {}
        self._completed_ttl = completed_ttl
        self._completed = Expiring()
        #: Told when a job ends (completed, or failed: dead, cancelled, deleted); the
        #: dependencies' ``ended``, set by the queue.
        self.on_end: Callable[[QueueState, Entry, bool, datetime], None] = _nothing

    def tick(self) -> datetime:
        """The current time, after forgetting the completed records expired by then."""
        now = self.clock.now()
        for queue, job_id in self._completed.due(now):
            state = self._queues.get(queue)
            entry = state.jobs.get(job_id) if state else None
            if state and entry and entry.state in _KEPT_FOR_A_TIME:
                state.remove(entry)
        return now

    def queue(self, name: str) -> QueueState:
        """Queue ``name``'s state, made empty on first use."""
        state = self._queues.get(name)
        if state is None:
            state = self._queues[name] = QueueState(name)
        return state

    def find(self, name: str, now: datetime | None = None) -> QueueState | None:
        """Queue ``name``'s state if it was ever used (its due delayed jobs made ready when
        ``now`` is given)."""
        state = self._queues.get(name)
        if state is not None and now is not None:
            state.promote(now)
        return state

    def entry(self, queue: str, job_id: str) -> Entry | None:
        """The stored job, if any."""
        state = self._queues.get(queue)
        return state.jobs.get(job_id) if state else None

    def names(self) -> list[str]:
        """Every queue ever used, sorted."""
        return sorted(self._queues)

    def states(self) -> list[QueueState]:
        """Every queue's state."""
        return list(self._queues.values())

    def completed(self, state: QueueState, entry: Entry, now: datetime) -> None:
        """The entry's job completed at ``now``: kept for ``completed_ttl``, then forgotten."""
        state.move(entry, JobState.COMPLETED)
        entry.finished_at = now
        state.completed += 1
        self.unique.release(entry)
        self._completed.add(now + self._completed_ttl, entry.queue, entry.job_id)
        self.settled.notify_all()
        self.on_end(state, entry, False, now)

    def cancelled(self, state: QueueState, entry: Entry, reason: str, now: datetime) -> None:
        """The entry's pending or running job was cancelled at ``now``: kept for
        ``completed_ttl``."""
        state.move(entry, JobState.CANCELLED)
        entry.reason = reason
        entry.stop = None
        entry.finished_at = now
        self.unique.release(entry)
        self._completed.add(now + self._completed_ttl, entry.queue, entry.job_id)
        self.settled.notify_all()
        self.on_end(state, entry, True, now)

    def drop(self, state: QueueState, entry: Entry) -> None:
        """Forget a job (delete, purge), freeing its unique key."""
        self.unique.release(entry)
        state.remove(entry)
        self.settled.notify_all()
        self.on_end(state, entry, True, self.clock.now())


def _nothing(*_: object) -> None:
    return None
