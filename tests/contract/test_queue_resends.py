"""Contract: re-sent writes change nothing (Q8); claim tokens; waiting claims."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import Dead, ErrorInfo, JobState, Retry, StaleLease
from foundry.ports import ClaimRequest
from tests.backends import LEASE, Queue, job


def test_resending_complete_with_the_same_lease_changes_nothing(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease, 1)

    queue.complete(lease, 2)

    record = queue.get("a")
    assert record is not None
    assert record.result == 1
    stats = queue.stats("default")
    assert (stats.completed, stats.stale_rejected) == (1, 0)


def test_resending_fail_with_the_same_lease_changes_nothing(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    first = queue.fail(lease, ErrorInfo("Boom"), Retry(timedelta(seconds=5)))

    again = queue.fail(lease, ErrorInfo("Boom"), Retry(timedelta(seconds=5)))

    assert first == again == JobState.DELAYED
    record = queue.get("a")
    assert record is not None
    assert len(record.errors) == 1
    assert queue.stats("default").failed == 1


def test_resending_release_with_the_same_lease_changes_nothing(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.release(lease)

    queue.release(lease)

    [again] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    assert again.attempt == 1


def test_resending_a_delayed_release_changes_nothing(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.release(lease, timedelta(seconds=5))

    queue.release(lease, timedelta(seconds=5))

    record = queue.get("a")
    assert record is not None
    assert (record.state, record.attempts) == (JobState.DELAYED, 0)
    clock.advance(timedelta(seconds=5))
    [again] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    assert again.attempt == 1


def test_a_different_operation_with_a_used_lease_is_stale(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)

    with pytest.raises(StaleLease):
        queue.fail(lease, ErrorInfo("Boom"), Dead("x"))

    assert queue.stats("default").stale_rejected == 1


def test_resending_a_claim_token_returns_the_same_leases_and_claims_no_more(
    queue: Queue,
) -> None:
    queue.enqueue_many([job(id=f"j{i}") for i in range(4)])
    first = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2, claim_token="t1"))

    again = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2, claim_token="t1"))

    assert again == first
    assert queue.stats("default").ready == 2


def test_a_resent_claim_token_returns_only_the_leases_it_still_holds(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    first = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2, claim_token="t1"))
    queue.complete(first[0])

    again = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2, claim_token="t1"))

    assert [lease.job_id for lease in again] == ["b"]


def test_a_claim_token_that_found_nothing_claims_nothing_when_resent(queue: Queue) -> None:
    first = queue.claim(ClaimRequest(["default"], lease=LEASE, claim_token="t1"))
    queue.enqueue(job(id="a"))

    again = queue.claim(ClaimRequest(["default"], lease=LEASE, claim_token="t1"))

    assert first == again == []
    assert queue.stats("default").ready == 1


def test_a_claim_that_waits_in_vain_returns_nothing(queue: Queue) -> None:
    claimed = queue.claim(ClaimRequest(["default"], lease=LEASE, wait=timedelta(milliseconds=20)))

    assert claimed == []
