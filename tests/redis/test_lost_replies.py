"""(a) Lost replies: a command runs, its reply is lost, redis-py re-sends it.

For every script, a queue whose reply was lost ends exactly like a twin queue that got its
reply: same records (state, attempts, errors, reason, times), same stats; no attempt is spent
twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Dead, ErrorInfo, Job, Retry, RetryPolicy, RunAfter, UniqueSpec
from foundry.ports import ClaimRequest
from tests.backends import unique_prefix
from tests.redis.lossy import LossPlan, lossy_client

LEASE = timedelta(seconds=30)
IDS = ("a", "b", "w")

pytestmark = pytest.mark.redis


@attrs.define
class Scenario:
    """What to do before the operation, the operation, and how many replies to let through."""

    arrange: Callable[[RedisQueue, ManualClock], Any]
    act: Callable[[RedisQueue, Any], Any]
    skip: int = 0


def _claimed(queue: RedisQueue, _: ManualClock) -> Any:
    queue.enqueue(Job("t", id="a", retry=RetryPolicy(max_attempts=1)))
    return queue.claim(ClaimRequest(["default"], lease=LEASE))


def _expired(queue: RedisQueue, clock: ManualClock) -> Any:
    leases = _claimed(queue, clock)
    clock.advance(LEASE + timedelta(milliseconds=1))
    return leases


def _dead(queue: RedisQueue, clock: ManualClock) -> Any:
    [lease] = _claimed(queue, clock)
    return queue.fail(lease, ErrorInfo("Boom"), Dead("boom"))


def _claimed_in_two_queues(queue: RedisQueue, _: ManualClock) -> Any:
    queue.enqueue_many([Job("t", id="a"), Job("t", id="b", queue="other")])
    return queue.claim(ClaimRequest(["default", "other"], lease=LEASE, limit=2))


def _claimed_one_of_two(queue: RedisQueue, _: ManualClock) -> Any:
    queue.enqueue_many([Job("t", id="a", queue="other"), Job("t", id="b")])
    return queue.claim(ClaimRequest(["other"], lease=LEASE))


def _complete_and_claim(queue: RedisQueue, leases: Any) -> Any:
    applied, claimed = queue.complete_and_claim(
        leases, [{"ok": 1}], ClaimRequest(["default"], lease=LEASE, claim_token="next")
    )
    return applied, [(lease.job_id, lease.token, lease.attempt) for lease in claimed]


def _claimed_ahead(queue: RedisQueue, clock: ManualClock) -> Any:
    queue.enqueue_many([Job("t", id="a"), Job("t", id="b")])
    return queue.claim(ClaimRequest(["default"], lease=LEASE, ahead=1)), clock


def _started_then_lapsed(queue: RedisQueue, arranged: Any) -> Any:
    """The held job's start rides in front of a claim; then every lease lapses."""
    leases, clock = arranged
    claimed = queue.claim(ClaimRequest(["default"], lease=LEASE, ahead=1, started=leases))
    clock.advance(LEASE + timedelta(milliseconds=1))
    return [x.job_id for x in claimed], queue.reap()


def _nothing(_: RedisQueue, __: ManualClock) -> Any:
    return None


SCENARIOS = {
    "enqueue": Scenario(_nothing, lambda q, _: q.enqueue(Job("t", id="a"))),
    "enqueue_many": Scenario(
        _nothing,
        lambda q, _: q.enqueue_many(
            [Job("t", id="a", unique=UniqueSpec("k")), Job("t", id="b", unique=UniqueSpec("k"))]
        ),
    ),
    "claim": Scenario(
        lambda q, _: q.enqueue(Job("t", id="a")),
        lambda q, _: [
            (x.job_id, x.attempt) for x in q.claim(ClaimRequest(["default"], lease=LEASE))
        ],
    ),
    "claim_ahead": Scenario(
        lambda q, _: q.enqueue_many([Job("t", id="a"), Job("t", id="b")]),
        lambda q, _: [
            (x.job_id, x.attempt, x.ahead)
            for x in q.claim(ClaimRequest(["default"], lease=LEASE, limit=2, ahead=1))
        ],
    ),
    "start": Scenario(_claimed_ahead, _started_then_lapsed),
    "renew": Scenario(_claimed, lambda q, leases: q.renew(leases, LEASE * 2)[0].deadline),
    "complete": Scenario(_claimed, lambda q, leases: q.complete(leases[0], {"ok": 1})),
    "complete_many": Scenario(_claimed, lambda q, leases: q.complete_many(leases)),
    "complete_many_pipelined": Scenario(
        _claimed_in_two_queues, lambda q, leases: q.complete_many(leases)
    ),
    "complete_and_claim_completion_lost": Scenario(_claimed_one_of_two, _complete_and_claim),
    "complete_and_claim_claim_lost": Scenario(_claimed_one_of_two, _complete_and_claim, skip=1),
    "renew_pipelined": Scenario(
        _claimed_in_two_queues, lambda q, leases: [x.deadline for x in q.renew(leases, LEASE)]
    ),
    "fail_retry_now": Scenario(
        _claimed, lambda q, leases: q.fail(leases[0], ErrorInfo("Boom"), Retry(timedelta(0)))
    ),
    "fail_retry_later": Scenario(
        _claimed, lambda q, leases: q.fail(leases[0], ErrorInfo("Boom"), Retry(LEASE))
    ),
    "fail_dead": Scenario(
        _claimed, lambda q, leases: q.fail(leases[0], ErrorInfo("Boom"), Dead("boom"))
    ),
    "release": Scenario(_claimed, lambda q, leases: q.release(leases[0])),
    "reap": Scenario(_expired, lambda q, _: q.reap(), skip=1),  # skips the registry read
    "requeue_dead": Scenario(_dead, lambda q, _: q.requeue_dead("default")),
    "delete": Scenario(
        lambda q, _: q.enqueue(Job("t", id="a")), lambda q, _: q.delete("default", "a")
    ),
    "purge": Scenario(lambda q, _: q.enqueue(Job("t", id="a")), lambda q, _: q.purge("default")),
    "purge_dead": Scenario(_dead, lambda q, _: q.purge_dead("default")),
}


def _snapshot(queue: RedisQueue) -> tuple[Any, ...]:
    records = []
    for job_id in IDS:
        record = queue.get(job_id)
        records.append(None if record is None else attrs.evolve(record, errors=()))
        records.append(None if record is None else [e.type for e in record.errors])
    stats = (queue.stats("default"), queue.stats("other"))
    return (stats, tuple(records), queue.dead("default"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_lost_reply_is_resent_and_the_state_is_as_if_applied_once(
    name: str, redis_url: str
) -> None:
    scenario = SCENARIOS[name]
    clocks = (ManualClock(), ManualClock())
    plan = LossPlan()
    clean = RedisQueue(redis.Redis.from_url(redis_url), prefix=unique_prefix(), clock=clocks[0])
    lossy = RedisQueue(lossy_client(redis_url, plan), prefix=unique_prefix(), clock=clocks[1])
    for queue in (clean, lossy):  # registers the queue: the next reply read is the script's
        queue.enqueue(Job("t", id="w", schedule=RunAfter(timedelta(days=1))))
    arranged = [scenario.arrange(q, clock) for q, clock in zip((clean, lossy), clocks, strict=True)]

    expected = scenario.act(clean, arranged[0])
    plan.drop_next(skip=scenario.skip)
    got = scenario.act(lossy, arranged[1])

    assert plan.dropped == 1
    assert got == expected
    assert _snapshot(lossy) == _snapshot(clean)
