"""``RedisQueue.complete_and_claim`` (completions and the next claim in one round trip), and
the waiting claim (its next claim pipelined behind the BLPOP on the wake lists)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.keys import QueueKeys
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, JobState
from foundry.ports import CompletingClaimer
from tests.backends import unique_prefix

LEASE = timedelta(seconds=30)

pytestmark = pytest.mark.redis


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def queue(redis_url: str, prefix: str) -> RedisQueue:
    return RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=ManualClock())


def test_the_redis_queue_offers_the_capability(queue: RedisQueue) -> None:
    assert isinstance(queue, CompletingClaimer)


def test_completions_are_applied_and_the_next_jobs_claimed(queue: RedisQueue) -> None:
    queue.enqueue_many([Job("t", id=name) for name in "abc"])
    first = queue.claim(["default"], lease=LEASE, limit=2)

    applied, claimed = queue.complete_and_claim(
        first, [{"n": 1}, None], ["default"], lease=LEASE, limit=2
    )

    assert applied == [True, True]
    assert [(lease.job_id, lease.attempt) for lease in claimed] == [("c", 1)]
    a, b = queue.get("a"), queue.get("b")
    assert a is not None
    assert b is not None
    assert (a.state, a.result, b.state) == (JobState.COMPLETED, {"n": 1}, JobState.COMPLETED)
    assert queue.stats("default").completed == 2


def test_a_stale_lease_is_reported_and_the_claim_still_happens(queue: RedisQueue) -> None:
    queue.enqueue_many([Job("t", id="a"), Job("t", id="b")])
    [lease] = queue.claim(["default"], lease=LEASE)
    queue.release(lease)  # the lease is gone: "a" is ready again

    applied, claimed = queue.complete_and_claim([lease], [None], ["default"], lease=LEASE, limit=2)

    assert applied == [False]
    assert sorted(x.job_id for x in claimed) == ["a", "b"]
    assert queue.stats("default").stale_rejected == 1


def test_completions_in_other_queues_ride_with_a_claim_over_several(queue: RedisQueue) -> None:
    queue.enqueue_many([Job("t", id="a", queue="one"), Job("t", id="b", queue="two")])
    queue.enqueue(Job("t", id="c", queue="three"))
    held = queue.claim(["one", "two"], lease=LEASE, limit=2)

    applied, claimed = queue.complete_and_claim(
        held, [None, None], ["one", "two", "three"], lease=LEASE, limit=3
    )

    assert applied == [True, True]
    assert [x.job_id for x in claimed] == ["c"]
    assert [queue.stats(name).completed for name in ("one", "two")] == [1, 1]


def test_with_nothing_to_claim_the_completions_are_still_written(queue: RedisQueue) -> None:
    queue.enqueue(Job("t", id="a"))
    held = queue.claim(["default"], lease=LEASE)

    applied, claimed = queue.complete_and_claim(
        held, [None], ["default"], lease=LEASE, wait=timedelta(milliseconds=20)
    )

    assert (applied, claimed) == ([True], [])
    record = queue.get("a")
    assert record is not None
    assert record.state is JobState.COMPLETED


def test_a_resent_call_returns_the_same_leases_and_completes_nothing_twice(
    queue: RedisQueue,
) -> None:
    queue.enqueue_many([Job("t", id="a"), Job("t", id="b")])
    held = queue.claim(["default"], lease=LEASE)

    once = queue.complete_and_claim(held, [None], ["default"], lease=LEASE, claim_token="tok")
    twice = queue.complete_and_claim(held, [None], ["default"], lease=LEASE, claim_token="tok")

    assert once == twice
    assert [x.job_id for x in once[1]] == ["b"]
    stats = queue.stats("default")
    assert (stats.completed, stats.active, stats.ready) == (1, 1, 0)


def test_without_queues_it_only_completes(queue: RedisQueue) -> None:
    queue.enqueue(Job("t", id="a"))
    held = queue.claim(["default"], lease=LEASE)

    assert queue.complete_and_claim(held, [None], [], lease=LEASE) == ([True], [])


def test_a_waiting_claim_woken_by_a_hint_without_a_job_keeps_waiting(
    queue: RedisQueue, redis_url: str, prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    wake = QueueKeys.of(prefix, "default").named("wake")
    client.rpush(wake, "1", "1")  # two hints whose jobs someone else took

    def enqueue_once_the_hints_are_spent() -> None:
        give_up = time.monotonic() + 10  # a claim that returned early leaves a hint unspent
        while client.llen(wake) and time.monotonic() < give_up:
            time.sleep(0.001)
        queue.enqueue(Job("t", id="late"))

    producer = threading.Thread(target=enqueue_once_the_hints_are_spent)
    producer.start()
    claimed = queue.claim(["default"], lease=LEASE, wait=timedelta(seconds=30))
    producer.join()

    assert [lease.job_id for lease in claimed] == ["late"]
