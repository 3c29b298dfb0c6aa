"""The Redis queue's wait for a job's end: a mark per waited job, a notification list per
ended job, and nothing at all for jobs nobody waits for."""

from __future__ import annotations

from datetime import timedelta

import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.ports import ClaimRequest
from tests.backends import LEASE, job, unique_prefix


def _queue(redis_url: str) -> tuple[RedisQueue, redis.Redis, str]:
    client = redis.Redis.from_url(redis_url)
    prefix = unique_prefix("w")
    return RedisQueue(client, prefix=prefix, clock=ManualClock()), client, prefix


def test_a_job_nobody_waits_for_leaves_no_notification(redis_url: str) -> None:
    queue, client, prefix = _queue(redis_url)
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.complete(lease)

    assert client.exists(f"{prefix}:{{default}}:n:a", f"{prefix}:{{default}}:waiters") == 0


def test_the_end_of_a_waited_job_pushes_one_notification_and_drops_the_mark(
    redis_url: str,
) -> None:
    queue, client, prefix = _queue(redis_url)
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.wait("a", timedelta(milliseconds=20))  # times out, leaving its mark
    assert client.hget(f"{prefix}:{{default}}:waiters", "a") == b"1"

    queue.complete(lease)

    notified = f"{prefix}:{{default}}:n:a"
    assert client.lrange(notified, 0, -1) == [b"1"]
    assert 0 < client.pttl(notified) <= 60_000
    assert not client.hexists(f"{prefix}:{{default}}:waiters", "a")
