"""A job record whose header (enqueue time, priority, attempts, key length) was overwritten by
something else shows as undecodable in every read, and a claim buries it: nothing raises."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, JobState, RunAfter
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


@pytest.mark.parametrize("field", ["jobs", "state"])
@pytest.mark.parametrize("value", [b"garbage", b"", b"\xff\xfe", b"1 x y", b"Z,0,0,,0,,,,"])
def test_a_corrupt_record_or_state_reads_as_one_undecodable_job_in_listings_and_waits(
    redis_url: str, clock: ManualClock, field: str, value: bytes
) -> None:
    prefix = unique_prefix("entry")
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix, clock=clock)
    later = RunAfter(timedelta(seconds=1))
    queue.enqueue_many(
        [
            Job("t", id="ranked", queue="q", priority=1),
            Job("t", id="fine", queue="q"),
            Job("t", id="due", queue="q", priority=2, schedule=later),
            Job("t", id="waits", queue="q", after=("fine",)),
        ]
    )
    client = redis.Redis.from_url(redis_url)
    for job_id in ("ranked", "due", "waits"):
        client.hset(f"{prefix}:{{q}}:{field}", job_id, value)
    clock.advance(timedelta(seconds=3))

    [age] = queue.oldest_ready_age(["q"])
    ready = {found.job.id: found.job.name for found in queue.jobs("q", JobState.READY)}
    waiting = [found.job.id for found in queue.jobs("q", JobState.WAITING)]
    shown = queue.get("ranked", "q")

    assert age == timedelta(seconds=3)  # the jobs it can read; a corrupt one's age is unknown
    assert ready["fine"] == "t"
    assert {ready["ranked"], ready["due"]} <= {"t", "undecodable"}
    assert "undecodable" in (ready["ranked"], ready["due"])
    assert waiting == ["waits"]
    assert shown is not None
    assert shown.job.name == "undecodable"
