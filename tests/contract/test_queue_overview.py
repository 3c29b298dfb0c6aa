"""Contract: readings over many queues, stats_many and oldest_ready_age (for dashboards)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import Dead, ErrorInfo, InvalidQueueName, Retry, RunAfter, RunAt
from foundry.ports import ClaimRequest
from tests.backends import LEASE, Queue, job

S = timedelta(seconds=1)


def test_stats_many_gives_each_queues_stats_in_the_order_asked(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a", queue="one"))
    queue.enqueue(job(id="b", queue="one", schedule=RunAfter(10 * S)))
    queue.enqueue(job(id="c", queue="one", schedule=RunAfter(100 * S)))
    queue.enqueue(job(id="d", queue="two"))
    queue.enqueue(job(id="e", queue="two"))
    [lease] = queue.claim(ClaimRequest(["two"], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom"), Dead("boom"))
    [lease] = queue.claim(ClaimRequest(["two"], lease=LEASE))
    queue.complete(lease)
    queue.enqueue(job(id="f", queue="two"))
    queue.claim(ClaimRequest(["two"], lease=LEASE))
    queue.pause("one")
    clock.advance(20 * S)
    names = ["two", "never-used", "one"]

    many = queue.stats_many(names)

    assert many == [queue.stats(name) for name in names]
    assert [(s.ready, s.delayed, s.active, s.dead, s.paused) for s in many] == [
        (0, 0, 1, 1, False),
        (0, 0, 0, 0, False),
        (2, 1, 0, 0, True),
    ]
    assert (many[0].completed, many[0].failed) == (1, 1)
    assert queue.stats_many([]) == []


def test_stats_many_refuses_a_bad_queue_name(queue: Queue) -> None:
    with pytest.raises(InvalidQueueName):
        queue.stats_many(["ok", "bad{name}"])


def test_a_queue_without_ready_jobs_has_no_age(queue: Queue) -> None:
    queue.enqueue(job(queue="later", schedule=RunAfter(60 * S)))

    ages = queue.oldest_ready_age(["never-used", "later"])

    assert ages == [None, None]


def test_a_ready_job_waits_from_its_enqueue_per_queue_in_order(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(queue="b"))
    clock.advance(10 * S)
    queue.enqueue(job(queue="a"))
    queue.enqueue(job(queue="a"))
    clock.advance(5 * S)

    ages = queue.oldest_ready_age(["a", "b", "c"])

    assert ages == [5 * S, 15 * S, None]


def test_a_delayed_job_waits_from_its_run_time(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="soon", schedule=RunAfter(30 * S)))
    queue.enqueue(job(id="at", queue="other", schedule=RunAt(clock.now() + 40 * S)))
    clock.advance(20 * S)
    before = queue.oldest_ready_age(["default", "other"])
    clock.advance(25 * S)

    after = queue.oldest_ready_age(["default", "other"])

    assert before == [None, None]
    assert after == [15 * S, 5 * S]


def test_a_starving_priority_shows_the_oldest_wait_not_the_head(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="low", priority=-5))
    clock.advance(10 * S)
    queue.enqueue(job(id="mid", priority=0))
    queue.enqueue(job(id="high", priority=7))
    clock.advance(10 * S)

    [age] = queue.oldest_ready_age(["default"])

    assert age == 20 * S


def test_running_jobs_do_not_wait_and_a_drained_queue_has_no_age(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a"))
    clock.advance(3 * S)
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    running = queue.oldest_ready_age(["default"])

    queue.complete(lease)

    assert running == [None]
    assert queue.oldest_ready_age(["default"]) == [None]


def test_a_retried_job_waits_from_its_retry_time(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="a"))
    clock.advance(100 * S)
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom"), Retry(10 * S))
    clock.advance(15 * S)

    ages = queue.oldest_ready_age(["default"])

    assert ages == [5 * S]


def test_a_retried_job_moved_to_ready_waits_no_longer_than_since_its_failure(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a"))
    queue.enqueue(job(id="b"))
    clock.advance(100 * S)
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom"), Retry(10 * S))
    clock.advance(15 * S)
    queue.claim(ClaimRequest(["default"], lease=LEASE))  # takes b; may move the due a to ready

    [age] = queue.oldest_ready_age(["default"])

    assert age is not None
    assert 5 * S <= age <= 15 * S
