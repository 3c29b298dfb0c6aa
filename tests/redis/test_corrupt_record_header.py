"""A job record whose header (enqueue time, priority, attempts, key length) was overwritten by
something else shows as undecodable in every read, and a claim buries it: nothing raises."""

from __future__ import annotations

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, JobState
from foundry.ports import ClaimRequest
from tests.backends import LEASE, unique_prefix

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("record", [b"garbage", b"", b"\xff\xfe"])
def test_a_record_whose_header_is_corrupt_reads_as_undecodable_and_goes_dead(
    redis_url: str, clock: ManualClock, record: bytes
) -> None:
    prefix = unique_prefix("header")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    queue.enqueue_many([Job("t", id="broken", queue="q"), Job("t", id="fine", queue="q")])
    redis.Redis.from_url(redis_url).hset(f"{prefix}:{{q}}:jobs", "broken", record)

    shown = queue.get("broken", "q")
    listed = [found.job.id for found in queue.jobs("q", JobState.READY)]
    [lease] = queue.claim(ClaimRequest(["q"], lease=LEASE))

    assert shown is not None
    assert shown.job.name == "undecodable"
    assert "header is corrupt" in shown.job.metadata["undecodable"]
    assert "broken" in listed
    assert lease.job_id == "fine"
    assert queue.get("broken", "q").state is JobState.DEAD  # type: ignore[union-attr]
