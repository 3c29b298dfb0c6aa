"""Contract: which ready job a claim takes (Q2), when a job becomes claimable (Q3), pauses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import RunAfter, RunAt
from foundry.ports import ClaimRequest
from tests.backends import LEASE, MS, Queue, job


def claim_ids(queue: Queue, queues: list[str], limit: int = 100) -> list[str]:
    return [lease.job_id for lease in queue.claim(ClaimRequest(queues, lease=LEASE, limit=limit))]


def test_higher_priority_runs_first_and_fifo_within_a_priority(queue: Queue) -> None:
    priorities = [0, 5, 0, -3, 5, 0, 255, -255]
    jobs = [job(id=f"j{i}", priority=p) for i, p in enumerate(priorities)]
    for each in jobs:
        queue.enqueue(each)

    claimed = claim_ids(queue, ["default"])

    assert claimed == ["j6", "j1", "j4", "j0", "j2", "j5", "j3", "j7"]


def test_fifo_holds_exactly_over_many_jobs_of_one_priority(queue: Queue) -> None:
    ids = [f"j{i:03}" for i in range(150)]
    queue.enqueue_many([job(id=job_id) for job_id in ids])

    claimed = claim_ids(queue, ["default"], limit=100) + claim_ids(queue, ["default"], limit=100)

    assert claimed == ids


def test_claim_takes_no_more_than_its_limit(queue: Queue) -> None:
    queue.enqueue_many([job(id=f"j{i}") for i in range(5)])

    leases = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=3))

    assert [lease.job_id for lease in leases] == ["j0", "j1", "j2"]
    assert queue.stats("default").ready == 2


def test_claim_over_several_queues_drains_them_in_the_order_given(queue: Queue) -> None:
    queue.enqueue_many([job(id="low1", queue="low"), job(id="low2", queue="low")])
    queue.enqueue_many([job(id="high1", queue="high", priority=-5), job(id="high2", queue="high")])

    claimed = claim_ids(queue, ["high", "low"], limit=3)

    assert claimed == ["high2", "high1", "low1"]


def test_claim_on_an_empty_or_unknown_queue_returns_nothing(queue: Queue) -> None:
    claimed = queue.claim(ClaimRequest(["nothing-here"], lease=LEASE))

    assert claimed == []


def test_a_delayed_job_is_not_claimable_1ms_before_its_run_time(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="later", schedule=RunAfter(timedelta(seconds=10))))
    clock.advance(timedelta(seconds=10) - MS)

    claimed = claim_ids(queue, ["default"])

    assert claimed == []
    assert queue.stats("default").delayed == 1


def test_a_delayed_job_is_claimable_exactly_at_its_run_time(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="later", schedule=RunAt(clock.now() + timedelta(seconds=10))))
    clock.advance(timedelta(seconds=10))

    claimed = claim_ids(queue, ["default"])

    assert claimed == ["later"]


def test_a_promoted_delayed_job_keeps_its_place_by_enqueue_order(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="delayed-first", schedule=RunAfter(timedelta(seconds=5))))
    queue.enqueue(job(id="ready-second"))
    clock.advance(timedelta(seconds=5))

    claimed = claim_ids(queue, ["default"])

    assert claimed == ["delayed-first", "ready-second"]


def test_a_run_time_in_the_past_means_ready_now(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="overdue", schedule=RunAt(clock.now() - timedelta(days=1))))

    claimed = claim_ids(queue, ["default"])

    assert claimed == ["overdue"]


def test_a_paused_queue_is_skipped_until_resumed(queue: Queue) -> None:
    queue.enqueue_many([job(id="a", queue="paused"), job(id="b", queue="open")])
    queue.pause("paused")

    while_paused = claim_ids(queue, ["paused", "open"])
    queue.resume("paused")
    after_resume = claim_ids(queue, ["paused", "open"])

    assert while_paused == ["b"]
    assert after_resume == ["a"]


def test_pause_shows_in_stats_and_enqueue_still_works(queue: Queue) -> None:
    queue.pause("default")

    queue.enqueue(job(id="a"))

    assert queue.stats("default").paused is True
    assert queue.stats("default").ready == 1


@pytest.mark.parametrize("limit", [0, -1])
def test_claim_rejects_a_limit_below_one(queue: Queue, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        queue.claim(ClaimRequest(["default"], lease=LEASE, limit=limit))
