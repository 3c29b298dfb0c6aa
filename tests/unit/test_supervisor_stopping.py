"""The supervisor's stops, driven by hand: warm, cold, and burst mode once the queues are
drained (fake children, a memory queue, a manual clock).
"""

from datetime import timedelta

import pytest

from foundry.application.outcome import OutcomeKind
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.settle import UNSENT_AT_STOP
from foundry.application.pool.stopping import BURST_HORIZON_S
from foundry.domain import JobState, Limit, Rate, RetryPolicy, RunAfter
from tests.log_support import foundry_messages
from tests.pool_support import FAST, Harness, LaggingQueue


def test_a_warm_stop_lets_running_jobs_finish_and_releases_prefetched_ones() -> None:
    pool = Harness(PoolConfig(concurrency=1, prefetch=1, idle_wait=FAST))
    running, buffered = pool.enqueue(2)
    pool.start()

    pool.sup.stopping.request()
    pool.advance(1)
    pool.reply(0)
    pool.advance(0)

    assert pool.queue.get(running).state is JobState.COMPLETED  # type: ignore[union-attr]
    released = pool.queue.get(buffered)
    assert released is not None
    assert (released.state, released.attempts) == (JobState.READY, 0)
    assert pool.sup.finished


def test_jobs_still_running_when_the_grace_ends_are_killed_and_released_unspent() -> None:
    pool = Harness(PoolConfig(concurrency=2, grace=timedelta(seconds=3), idle_wait=FAST))
    first, second = pool.enqueue(2)
    pool.start()

    pool.sup.stopping.request()
    pool.advance(0)
    pool.advance(2.9)
    still_running = pool.sup.finished
    pool.advance(0.1)

    assert not still_running
    assert sorted(pool.workforce.told("kill")) == [0, 1]
    for job_id in (first, second):
        record = pool.queue.get(job_id)
        assert record is not None
        assert (record.state, record.attempts) == (JobState.READY, 0)
    assert pool.sup.finished


def test_a_write_still_unconfirmed_when_the_grace_ends_is_reported_with_an_unknown_outcome() -> (
    None
):
    config = PoolConfig(concurrency=1, grace=timedelta(seconds=3), idle_wait=FAST)
    pool = Harness(config, queue=LaggingQueue)
    (job_id,) = pool.enqueue(1)
    pool.start()
    assert isinstance(pool.queue, LaggingQueue)
    pool.queue.lagging = True  # every completion is applied, then refused after a WAIT

    pool.sup.stopping.request()
    pool.advance(0)
    pool.reply(0)  # the completion goes out at the stop's next step: it waits in the outbox
    pool.advance(0)
    pool.advance(0)  # the grace is over: the pool gives the outbox up

    record = pool.queue.get(job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED
    (outcome,) = [outcome for job, outcome in pool.events.finished if job == job_id]
    assert (outcome.kind, outcome.reason) == (OutcomeKind.ABANDONED, UNSENT_AT_STOP)
    assert pool.sup.finished


def test_a_cold_stop_kills_and_releases_at_once() -> None:
    pool = Harness(PoolConfig(concurrency=1, idle_wait=FAST))
    (job_id,) = pool.enqueue(1)
    pool.start()

    pool.sup.stopping.request(cold=True)
    pool.advance(0)

    assert pool.workforce.told("kill") == [0]
    assert pool.queue.get(job_id).state is JobState.READY  # type: ignore[union-attr]
    assert pool.sup.finished


def test_burst_mode_finishes_once_nothing_is_ready_delayed_or_running() -> None:
    pool = Harness(PoolConfig(concurrency=1, burst=True, idle_wait=FAST))
    pool.enqueue(1)
    pool.start()
    pool.reply(0)

    pool.advance(1)
    pool.advance(0)

    assert pool.sup.finished
    assert pool.sup.exit_code is None


def test_burst_mode_waits_for_delayed_retries() -> None:
    pool = Harness(PoolConfig(concurrency=1, burst=True, idle_wait=FAST))
    (job_id,) = pool.enqueue(1, retry=RetryPolicy(max_attempts=2))
    pool.start()
    pool.fail(0, ValueError("once"))

    pool.advance(0)
    waiting = pool.sup.finished
    pool.advance(2)
    pool.reply(0)
    pool.advance(0.1)
    pool.advance(0)

    assert not waiting
    assert pool.queue.get(job_id).state is JobState.COMPLETED  # type: ignore[union-attr]
    assert pool.sup.finished


def test_burst_mode_leaves_jobs_delayed_beyond_its_horizon_and_says_so() -> None:
    config = PoolConfig(concurrency=1, burst=True, idle_wait=FAST, queues=("default", "paused"))
    pool = Harness(config)
    pool.enqueue(1, schedule=RunAfter(timedelta(days=1)))
    pool.enqueue(1, queue="paused")
    pool.queue.pause("paused")
    pool.start()

    pool.advance(BURST_HORIZON_S - 1)
    waiting = pool.sup.finished
    pool.advance(1)
    pool.advance(0)

    assert not waiting
    assert pool.sup.finished
    assert pool.sup.stopping.left is not None
    assert pool.sup.stopping.left.describe() == "; left: 1 delayed in default, 1 in paused paused"


def test_burst_mode_runs_a_rate_limited_backlog_longer_than_its_horizon_to_the_end() -> None:
    # Jobs a rate holds back count as delayed and are never seen ready (a claim releases and
    # takes them at once): the horizon counts from the last job the pool got.
    pool = Harness(PoolConfig(concurrency=1, burst=True, idle_wait=FAST))
    ids = pool.enqueue(30, limit=Limit("api", rate=Rate.parse("2/s")))  # 15 s of starts
    pool.start()

    for _ in range(200):  # 50 s at most
        if pool.sup.finished:
            break
        if pool.sup.slots[0].busy:
            pool.reply(0)
        pool.advance(0.25)

    assert pool.sup.finished
    states = [pool.queue.get(job_id).state for job_id in ids]  # type: ignore[union-attr]
    assert states == [JobState.COMPLETED] * 30


def test_jobs_killed_when_the_grace_ends_are_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pool = Harness(PoolConfig(concurrency=2, grace=timedelta(seconds=3), idle_wait=FAST))
    first, second = pool.enqueue(2)
    pool.start()

    pool.sup.stopping.request()
    pool.advance(0)
    pool.advance(3)

    [warning] = [m for m in foundry_messages(caplog) if "still running" in m]
    assert warning.startswith("the stop's grace is over: killing 2 job(s) still running")
    assert first in warning
    assert second in warning
