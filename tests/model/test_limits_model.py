"""The limits state machine: jobs of a few keys, each with a concurrency, claimed, finished,
released, failed and lapsed, and waiting ones cancelled or deleted, in random order, on
memory, Redis and PostgreSQL.

Invariants: no key ever runs more jobs than its concurrency, and a claim that leased fewer
jobs than it asked for left no job of a key with a free slot waiting (a limited job never
blocks another key's jobs). Rates: the starts of a rate-limited key keep to its schedule,
one turn per interval: any ``m + 1`` consecutive starts span at least ``m - 1`` intervals (a
window of ``per`` holds at most ``count + 1``), and they are in time order; and no turn goes
unused while a job of the key waits (a claim that leased fewer jobs than it asked for leaves
one waiting only if the key started a job within the last interval).
"""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timedelta
from typing import cast

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Batch, ErrorInfo, Job, JobState, Limit, Rate, Retry
from foundry.ports import ClaimRequest, Lease
from tests.backends import BatchQueue, Queue

LEASE = timedelta(seconds=10)
RATE = Rate(2, timedelta(seconds=1))  # key "r": one start every 500 ms
#: Each key's limit; "free" jobs have none.
LIMITS = {
    "a": Limit("a", concurrency=1),
    "b": Limit("b", concurrency=2),
    "r": Limit("r", rate=RATE),
    "free": None,
}
CAPACITY = {"a": 1, "b": 2}


class LimitsMachine(RuleBasedStateMachine):
    """Calls the adapter; the model is who holds a lease, per key."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.queue = self.make_queue(self.clock)
        self.ids = itertools.count()
        self.keys: dict[str, str] = {}  # job id -> key
        self.held: dict[str, Lease] = {}  # job id -> its current lease
        self.finished: set[str] = set()
        self.rate_starts: list[datetime] = []
        self.batches: dict[str, list[str]] = {}  # batch id -> its members

    def make_queue(self, clock: ManualClock) -> Queue:
        return MemoryQueue(clock)

    @rule(key=st.sampled_from(sorted(LIMITS)), count=st.integers(1, 3))
    def enqueue(self, key: str, count: int) -> None:
        jobs = [Job("work", id=f"{key}{next(self.ids)}", limit=LIMITS[key]) for _ in range(count)]
        self.queue.enqueue_many(jobs)
        self.keys.update((job.id, key) for job in jobs)

    @rule(keys=st.lists(st.sampled_from(sorted(LIMITS)), min_size=1, max_size=4))
    def enqueue_a_batch(self, keys: list[str]) -> None:
        jobs = [Job("work", id=f"{key}{next(self.ids)}", limit=LIMITS[key]) for key in keys]
        batch_id = f"batch{next(self.ids)}"
        cast(BatchQueue, self.queue).enqueue_batches([Batch(jobs, id=batch_id)])
        self.keys.update((job.id, key) for job, key in zip(jobs, keys, strict=True))
        self.batches[batch_id] = [job.id for job in jobs]

    @rule(data=st.data())
    def cancel_a_batch(self, data: st.DataObject) -> None:
        """Its waiting members end cancelled (the running ones are only asked to stop)."""
        if not self.batches:
            return
        batch_id = data.draw(st.sampled_from(sorted(self.batches)))
        cast(BatchQueue, self.queue).cancel_batch(batch_id)
        self.finished.update(
            job_id for job_id in self.batches.pop(batch_id) if job_id not in self.held
        )

    @rule(limit=st.integers(1, 4))
    def claim(self, limit: int) -> None:
        leases = self.queue.claim(ClaimRequest(["default"], lease=LEASE, limit=limit))

        for lease in leases:
            assert lease.job_id not in self.held
            self.held[lease.job_id] = lease
            if self.keys[lease.job_id] == "r":
                self.rate_starts.append(self.clock.now())
        if len(leases) < limit:
            self._nothing_claimable_left()

    def _nothing_claimable_left(self) -> None:
        running = self._running()
        for job_id, key in self.keys.items():
            if job_id in self.held or job_id in self.finished:
                continue
            record = self.queue.get(job_id)
            if record is None or record.state not in (JobState.READY, JobState.DELAYED):
                continue
            if key == "r":
                self._rate_turn_not_free(job_id)
                continue
            assert key in CAPACITY, f"{job_id} of a free key was left waiting"
            assert running.get(key, 0) >= CAPACITY[key], f"{job_id} left with a free slot"

    def _rate_turn_not_free(self, job_id: str) -> None:
        """A job of the rate-limited key waits only while the key started one within the last
        interval: no turn goes unused (a cancelled or deleted job's turn passes on)."""
        since = self.clock.now() - RATE.per / RATE.count
        assert any(start > since for start in self.rate_starts), f"{job_id} waits, turn free"

    def _running(self) -> dict[str, int]:
        running: dict[str, int] = {}
        for job_id in self.held:
            key = self.keys[job_id]
            running[key] = running.get(key, 0) + 1
        return running

    def _take(self, data: st.DataObject) -> Lease | None:
        if not self.held:
            return None
        job_id = data.draw(st.sampled_from(sorted(self.held)))
        return self.held.pop(job_id)

    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        lease = self._take(data)
        if lease is not None:
            self.queue.complete(lease)
            self.finished.add(lease.job_id)

    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        lease = self._take(data)
        if lease is not None:
            self.queue.release(lease)

    @rule(data=st.data())
    def fail_and_retry(self, data: st.DataObject) -> None:
        lease = self._take(data)
        if lease is not None:
            self.queue.fail(lease, ErrorInfo("Boom"), Retry(timedelta(0)))

    @rule(data=st.data(), how=st.sampled_from(["cancel", "delete"]))
    def drop_a_waiting_job(self, data: st.DataObject, how: str) -> None:
        waiting = sorted(set(self.keys) - set(self.held) - self.finished)
        if not waiting:
            return
        job_id = data.draw(st.sampled_from(waiting))
        if how == "cancel":
            self.queue.cancel(job_id)
        else:
            self.queue.delete("default", job_id)
        self.finished.add(job_id)

    @rule(step=st.sampled_from([timedelta(milliseconds=250), timedelta(seconds=1), LEASE]))
    def advance(self, step: timedelta) -> None:
        self.clock.advance(step)
        now = self.clock.now()
        lapsed = [job_id for job_id, lease in self.held.items() if lease.deadline < now]
        self.queue.reap()
        for job_id in lapsed:
            del self.held[job_id]

    @invariant()
    def no_key_runs_more_than_its_concurrency(self) -> None:
        for key, count in self._running().items():
            assert count <= CAPACITY.get(key, count)

    @invariant()
    def a_rate_limited_key_starts_one_job_per_turn(self) -> None:
        starts, interval = self.rate_starts, RATE.per / RATE.count
        for first, later in itertools.combinations(range(len(starts)), 2):
            assert starts[later] - starts[first] >= (later - first - 1) * interval, starts


TestMemoryLimits = LimitsMachine.TestCase
TestMemoryLimits.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)


@pytest.mark.redis
def test_redis_limits_match_the_model(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)

    class RedisLimitsMachine(LimitsMachine):
        def make_queue(self, clock: ManualClock) -> Queue:
            return RedisQueue(client, prefix=f"l{secrets.token_hex(6)}", clock=clock)

    run_state_machine_as_test(
        RedisLimitsMachine,
        settings=settings(max_examples=40, stateful_step_count=40, deadline=None),
    )
