"""A plain job enqueued on the server's clock: its call is packed by the enqueuer and sent by
``FunctionRunner.call_packed``; it keeps the promises of the general call."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, UniqueSpec
from foundry.ports import ClaimRequest, Duplicate, Enqueued
from tests.backends import unique_prefix

pytestmark = pytest.mark.redis


def _queue(redis_url: str) -> RedisQueue:
    return RedisQueue(redis.Redis.from_url(redis_url), prefix=unique_prefix("short"))


def _claim_all(queue: RedisQueue) -> list[str]:
    request = ClaimRequest(("q",), lease=timedelta(seconds=30), limit=100)
    return [lease.job.id for lease in queue.claim(request)]


def test_plain_jobs_on_the_servers_clock_are_stored_once_and_claimed_in_order(
    redis_url: str,
) -> None:
    queue = _queue(redis_url)
    jobs = [Job("noop", queue="q") for _ in range(3)]

    outcomes = [queue.enqueue(job) for job in jobs]
    again = queue.enqueue(jobs[1])

    assert outcomes == [Enqueued(job.id) for job in jobs]
    assert again == Enqueued(jobs[1].id)
    assert _claim_all(queue) == [job.id for job in jobs]


def test_a_plain_job_is_stored_after_redis_lost_the_library(redis_url: str) -> None:
    queue = _queue(redis_url)
    queue.enqueue(Job("noop", queue="q"))
    redis.Redis.from_url(redis_url).function_flush()
    job = Job("noop", queue="q")

    outcome = queue.enqueue(job)

    assert outcome == Enqueued(job.id)
    assert _claim_all(queue)[-1] == job.id


def test_a_unique_job_beside_plain_ones_still_meets_its_duplicate(redis_url: str) -> None:
    queue = _queue(redis_url)
    first = Job("noop", queue="q", unique=UniqueSpec("k"))
    queue.enqueue(Job("noop", queue="q"))

    queue.enqueue(first)
    outcome = queue.enqueue(Job("noop", queue="q", unique=first.unique))

    assert isinstance(outcome, Duplicate)
    assert outcome.existing_id == first.id
