"""Readers tolerate any stored time: a score or state written by hand, or before run times
were bounded, reads as the nearest representable moment instead of an OverflowError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from foundry.adapters.clock import ManualClock
from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import Job, JobState, RunAfter
from foundry.entrypoints.settings import Settings
from tests.backends import unique_prefix
from tests.cli_support import container_for, invoke

pytestmark = pytest.mark.redis
LATEST = datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize("score", ["1e300", "inf"])
def test_a_run_time_beyond_any_date_reads_as_the_latest_moment(
    redis_url: str, clock: ManualClock, score: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    prefix = unique_prefix("far")
    queue = RedisQueue(client, prefix=prefix, clock=clock)
    job = Job("t", id="far", schedule=RunAfter(timedelta(days=1)))
    queue.enqueue(job)
    client.zadd(f"{prefix}:{{default}}:delayed", {"far": score})

    record = queue.get("far")
    shown = invoke(container_for(queue, clock, Settings()), "stats")

    assert record is not None
    assert (record.state, record.run_at) == (JobState.DELAYED, LATEST)
    assert shown.exit_code == 0, shown.output
