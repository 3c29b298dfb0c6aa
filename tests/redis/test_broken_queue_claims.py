"""A completion Redis refuses (a key of the wrong type in its queue) inside a claim's round
trip is that job's and its queue's alone: the claim still hands out what it took, no healthy
queue is left out, and the refused job ends as the pool ends any job whose end it cannot
write."""

from __future__ import annotations

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.connection import RedisSettings, connect
from foundry.adapters.redis.queue import RedisQueue
from foundry.application.outcome import OutcomeKind
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.settle import OUTBOX_RETRY_S, REFUSED_FOR_S, UNWRITABLE
from foundry.domain import Job, JobState, QueueBroken, UniqueSpec
from foundry.ports import ClaimRequest
from tests.backends import LEASE, unique_prefix
from tests.pool_support import FAST, Harness

pytestmark = pytest.mark.redis


def _break_unique_key(queue: RedisQueue, key: str) -> None:
    """Make the unique key ``key`` of queue ``b`` a hash: completing its holder is refused
    (WRONGTYPE) while the queue's claims still work."""
    client = queue._runner.client
    name = f"{queue._keys.prefix}:{{b}}:u:{key}"
    client.delete(name)
    client.hset(name, "x", "y")


def _queue(redis_url: str, clock: ManualClock) -> RedisQueue:
    return RedisQueue(redis.Redis.from_url(redis_url), prefix=unique_prefix("bc"), clock=clock)


@pytest.mark.parametrize("url", ["redis_url", "redis_cluster_url"])
def test_a_refused_completion_is_reported_for_its_job_and_the_claim_is_returned(
    request: pytest.FixtureRequest, url: str, clock: ManualClock
) -> None:
    client = connect(RedisSettings(url=request.getfixturevalue(url)))
    queue = RedisQueue(client, prefix=unique_prefix("bc"), clock=clock)
    queue.enqueue_many([Job("t", id="b1", queue="b", unique=UniqueSpec("report"))])
    queue.enqueue(Job("t", id="a0", queue="a"))
    held = queue.claim(ClaimRequest(["b", "a"], lease=LEASE, limit=2))
    _break_unique_key(queue, "report")
    queue.enqueue_many([Job("t", id="a1", queue="a"), Job("t", id="a2", queue="a")])

    applied, claimed = queue.complete_and_claim(
        held, [1, 2], ClaimRequest(["a", "b"], lease=LEASE, limit=2)
    )

    refused, done = applied
    assert isinstance(refused, QueueBroken)
    assert refused.queue == "b"
    assert "WRONGTYPE" in str(refused)
    assert done is True
    assert [(lease.job_id, lease.attempt) for lease in claimed] == [("a1", 1), ("a2", 1)]
    b1, a0 = queue.get("b1"), queue.get("a0")
    assert b1 is not None
    assert a0 is not None
    assert (b1.state, a0.state) == (JobState.ACTIVE, JobState.COMPLETED)  # b1: nothing written


def test_a_claims_own_refusal_still_names_the_claimed_queue(
    redis_url: str, clock: ManualClock
) -> None:
    queue = _queue(redis_url, clock)
    queue.enqueue(Job("t", id="a1", queue="a"))
    held = queue.claim(ClaimRequest(["a"], lease=LEASE))
    queue.enqueue(Job("t", id="b1", queue="b"))
    queue._runner.client.set(f"{queue._keys.prefix}:{{b}}:ready", "x")

    with pytest.raises(QueueBroken, match=r"\{b\}:ready is a string") as raised:
        queue.complete_and_claim(held, [None], ClaimRequest(["b"], lease=LEASE))

    assert raised.value.queue == "b"


def _refused_for(pool: Harness, seconds: float) -> None:
    for _ in range(round(seconds / OUTBOX_RETRY_S)):
        pool.advance(OUTBOX_RETRY_S)


def test_a_pool_runs_what_it_claimed_behind_a_completion_another_queue_refused(
    redis_url: str,
) -> None:
    config = PoolConfig(queues=("a", "b"), concurrency=1, idle_wait=FAST, cancel_check=None)
    pool = Harness(config, queue=lambda clock: _queue(redis_url, clock))  # type: ignore[arg-type,return-value]
    queue = pool.queue
    assert isinstance(queue, RedisQueue)
    queue.enqueue(Job("work", id="b1", queue="b", unique=UniqueSpec("report")))
    pool.start()
    _break_unique_key(queue, "report")
    queue.enqueue_many([Job("work", id="a1", queue="a"), Job("work", id="a2", queue="a")])

    pool.reply(0, value=3)  # b1's completion rides in front of the claim that takes a1
    running = pool.running(0)
    quarantined = pool.sup._quarantine.broken(pool.now)
    _refused_for(pool, REFUSED_FOR_S + OUTBOX_RETRY_S)

    assert quarantined == []
    assert running == "a1"
    a1 = queue.get("a1")
    assert a1 is not None
    assert (a1.state, a1.attempts) == (JobState.ACTIVE, 1)
    assert [lease.job_id for lease in pool.began] == ["b1", "a1"]
    [(ended, outcome)] = pool.events.finished
    # Its end is written dead (a unique key of another type holds no job to release).
    assert (ended, outcome.kind) == ("b1", OutcomeKind.DEAD)
    b1 = queue.get("b1")
    assert b1 is not None
    assert b1.state is JobState.DEAD
    assert outcome.reason is not None
    assert outcome.reason.startswith(f"{UNWRITABLE}: QueueBroken: queue 'b' is broken")
    assert "b1" not in pool.sup._book


def test_a_claim_refused_in_one_queue_leaves_only_that_one_out_and_hands_out_the_others_jobs(
    redis_url: str,
) -> None:
    config = PoolConfig(queues=("a", "b"), concurrency=2, idle_wait=FAST, cancel_check=None)
    pool = Harness(config, queue=lambda clock: _queue(redis_url, clock))  # type: ignore[arg-type,return-value]
    queue = pool.queue
    assert isinstance(queue, RedisQueue)
    queue.enqueue_many([Job("work", id="a1", queue="a"), Job("work", id="b1", queue="b")])
    queue._runner.client.set(f"{queue._keys.prefix}:{{b}}:ready", "x")

    pool.start()  # the claim takes a1 from a, then b refuses its own

    assert pool.sup._quarantine.broken(pool.now) == ["b"]
    assert [(lease.job_id, lease.attempt) for lease in pool.began] == [("a1", 1)]


def test_a_start_report_another_queue_refuses_does_not_fail_the_claim_it_rides_with(
    redis_url: str, clock: ManualClock
) -> None:
    queue = _queue(redis_url, clock)
    queue.enqueue(Job("t", id="b1", queue="b"))
    held = queue.claim(ClaimRequest(["b"], lease=LEASE, ahead=1))
    queue._runner.client.set(f"{queue._keys.prefix}:{{b}}:ahead", "x")
    queue.enqueue(Job("t", id="a1", queue="a"))

    claimed = queue.claim(ClaimRequest(["a"], lease=LEASE, started=held))

    assert [(lease.job_id, lease.attempt) for lease in claimed] == [("a1", 1)]


def test_a_batch_of_completions_reports_a_refusal_for_its_jobs_and_applies_the_others(
    redis_url: str, clock: ManualClock
) -> None:
    queue = _queue(redis_url, clock)
    queue.enqueue_many([Job("t", id="b1", queue="b", unique=UniqueSpec("report"))])
    queue.enqueue(Job("t", id="a1", queue="a"))
    held = queue.claim(ClaimRequest(["b", "a"], lease=LEASE, limit=2))
    _break_unique_key(queue, "report")

    refused, done = queue.complete_many(held, [1, 2])

    assert isinstance(refused, QueueBroken)
    assert (refused.queue, done) == ("b", True)
    a1 = queue.get("a1")
    assert a1 is not None
    assert a1.state is JobState.COMPLETED


def test_the_pool_settles_the_healthy_jobs_of_a_flushed_batch_at_once(redis_url: str) -> None:
    config = PoolConfig(queues=("a", "b"), concurrency=2, idle_wait=FAST, cancel_check=None)
    pool = Harness(config, queue=lambda clock: _queue(redis_url, clock))  # type: ignore[arg-type,return-value]
    queue = pool.queue
    assert isinstance(queue, RedisQueue)
    queue.enqueue_many([Job("work", id="b1", queue="b", unique=UniqueSpec("report"))])
    queue.enqueue(Job("work", id="a1", queue="a"))
    pool.start()
    _break_unique_key(queue, "report")
    settler = pool.sup.settler
    for slot in pool.sup.slots:
        assert slot.job is not None
        settler.complete(slot.job.lease, None, 0.01, pool.now)

    settler.flush()

    assert [(job_id, outcome.kind) for job_id, outcome in pool.events.finished] == [
        ("a1", OutcomeKind.COMPLETED)
    ]
    assert [pending.lease.job_id for pending in settler.outbox] == ["b1"]
    assert pool.sup._quarantine.broken(pool.now) == []
