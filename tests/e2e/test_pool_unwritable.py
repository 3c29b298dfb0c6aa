"""A real pool on each backend whose write about one job fails for a reason of that job's
own (not an outage): that job ends in the dead letters with the reason, the worker lives on."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

import pytest

from foundry.adapters.clock import ManualClock
from foundry.application.dispatcher import Dispatcher
from foundry.application.pool import Pool
from foundry.application.pool.config import PoolConfig
from foundry.application.registry import JobRegistry
from foundry.domain import JobState, RetryPolicy
from tests.backends import QUEUE_BACKENDS, Queue, QueueOptions

registry = JobRegistry()


class NoOffset(tzinfo):
    """A time zone whose offset cannot be had: a datetime in it crosses to the parent
    (pickled), where writing it as the job's result raises what its ``utcoffset`` raises."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("the offset of this zone is not known yet")

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str:
        return "NoOffset"


@registry.job(name="unwritable", retry=RetryPolicy(max_attempts=3))
def unwritable() -> datetime:
    return datetime(2030, 1, 1, tzinfo=NoOffset())


@registry.job(name="add")
def add(a: int, b: int) -> int:
    return a + b


@pytest.fixture(
    params=[
        pytest.param(name, marks=QUEUE_BACKENDS[name].marks)
        for name in ("memory", "redis", "postgres")
    ]
)
def queue(request: pytest.FixtureRequest, clock: ManualClock) -> Queue:
    """A fresh queue of memory, Redis and PostgreSQL in turn."""
    return QUEUE_BACKENDS[request.param].build(request.getfixturevalue, clock, QueueOptions())


def test_a_result_the_queue_cannot_write_ends_its_job_dead_and_the_worker_lives_on(
    queue: Queue, clock: ManualClock
) -> None:
    dispatcher = Dispatcher(queue, registry, clock)
    failing = dispatcher.dispatch("unwritable")
    after = [dispatcher.dispatch("add", {"a": n, "b": 1}) for n in range(3)]
    config = PoolConfig(concurrency=1, burst=True, idle_wait=timedelta(milliseconds=50))

    code = Pool(queue, registry, config, clock=clock, workers=queue).run()

    record = queue.get(failing)
    assert record is not None
    assert (code, record.state, record.attempts) == (0, JobState.DEAD, 1)
    assert record.reason is not None
    assert "RuntimeError: the offset of this zone is not known yet" in record.reason
    assert record.errors[-1].type == "RuntimeError"
    assert [queue.get(job_id).result for job_id in after] == [1, 2, 3]  # type: ignore[union-attr]
