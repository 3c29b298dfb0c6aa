"""Contract: leases (Q4), recovery (Q5, Q6), release (Q7), concurrent claimers."""

from __future__ import annotations

import threading
from datetime import timedelta

import attrs
import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import (
    Dead,
    ErrorInfo,
    JobState,
    Progress,
    Retry,
    RetryPolicy,
    RunAfter,
    StaleLease,
)
from foundry.ports import ClaimRequest
from tests.backends import LEASE, MS, Queue, job


def test_claim_counts_the_attempt_and_sets_the_lease_deadline(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a", payload={"x": 1}))

    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    assert lease.job.payload == {"x": 1}
    assert lease.attempt == 1
    assert lease.deadline == clock.now() + LEASE
    assert queue.get("a") is not None
    assert queue.get("a").state is JobState.ACTIVE  # type: ignore[union-attr]


def test_a_leased_job_cannot_be_claimed_by_anyone_else(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="a"))
    queue.claim(ClaimRequest(["default"], lease=LEASE))
    clock.advance(LEASE)

    second = queue.claim(ClaimRequest(["default"], lease=LEASE))

    assert second == []


def test_complete_with_the_lease_finishes_the_job(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.complete(lease, {"answer": 42})

    record = queue.get("a")
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.result == {"answer": 42}
    assert queue.stats("default").completed == 1


def test_renew_extends_the_deadline_from_now(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    clock.advance(timedelta(seconds=20))

    [renewed] = queue.renew([lease], timedelta(seconds=60))

    assert renewed is not None
    assert renewed.deadline == clock.now() + timedelta(seconds=60)
    assert renewed.token == lease.token


def test_renew_returns_none_for_a_lease_that_was_reaped(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    [lost] = queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=1)))
    [kept] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    clock.advance(timedelta(seconds=2))
    queue.reap()

    renewed = queue.renew([lost, kept], LEASE)

    assert renewed[0] is None
    assert renewed[1] is not None
    assert renewed[1].job_id == "b"


def test_a_stale_lease_is_rejected_and_counted(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="a"))
    [old] = queue.claim(ClaimRequest(["default"], lease=timedelta(seconds=1)))
    clock.advance(timedelta(seconds=2))
    queue.reap()
    [current] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    with pytest.raises(StaleLease):
        queue.complete(old)
    with pytest.raises(StaleLease):
        queue.fail(old, ErrorInfo("Boom"), Retry(timedelta(0)))
    with pytest.raises(StaleLease):
        queue.release(old)

    assert queue.stats("default").stale_rejected == 3
    record = queue.get("a")
    assert record is not None
    assert record.state is JobState.ACTIVE
    assert record.lease_deadline == current.deadline


def test_a_lease_is_not_reaped_at_its_deadline_only_after_it(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a"))
    queue.claim(ClaimRequest(["default"], lease=LEASE))
    clock.advance(LEASE)

    at_deadline = queue.reap()
    clock.advance(MS)
    after_deadline = queue.reap()

    assert at_deadline == 0
    assert after_deadline == 1
    assert queue.stats("default").ready == 1


def test_a_recovered_job_keeps_its_place_and_its_attempt_count(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue_many([job(id="first"), job(id="second")])
    queue.claim(ClaimRequest(["default"], lease=LEASE))
    clock.advance(LEASE + MS)
    queue.reap()

    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    assert lease.job_id == "first"
    assert lease.attempt == 2


def test_a_job_that_keeps_losing_its_lease_ends_dead_with_lease_lost(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="poison", retry=RetryPolicy(max_attempts=2)))

    for _ in range(2):
        queue.claim(ClaimRequest(["default"], lease=LEASE))
        clock.advance(LEASE + MS)
        queue.reap()

    assert queue.claim(ClaimRequest(["default"], lease=LEASE)) == []
    [letter] = queue.dead("default")
    assert letter.reason == "lease lost"
    assert letter.attempts == 2
    assert [error.type for error in letter.errors] == ["LeaseLost"]
    assert letter.errors[0].attempt == 2


def test_release_puts_the_job_back_at_the_front_of_its_priority(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b"), job(id="c")])
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.release(lease)

    [again] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    assert again.job_id == "a"
    assert again.attempt == 1


def test_release_with_a_delay_makes_the_job_claimable_after_it_without_spending_an_attempt(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.release(lease, timedelta(seconds=5))

    record = queue.get("a")
    assert record is not None
    assert (record.state, record.attempts, len(record.errors)) == (JobState.DELAYED, 0, 0)
    clock.advance(timedelta(seconds=5) - MS)
    assert queue.claim(ClaimRequest(["default"], lease=LEASE)) == []
    clock.advance(MS)
    [again] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    assert again.attempt == 1


def test_fail_with_a_retry_records_the_error_and_queues_the_job_at_the_back(
    queue: Queue,
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    state = queue.fail(lease, ErrorInfo("ValueError", "bad"), Retry(timedelta(0)))

    assert state is JobState.READY
    assert [
        lease.job_id for lease in queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))
    ] == ["b", "a"]
    record = queue.get("a")
    assert record is not None
    assert [(e.type, e.attempt) for e in record.errors] == [("ValueError", 1)]
    assert queue.stats("default").failed == 1


def test_fail_with_a_delay_makes_the_job_claimable_only_after_it(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    state = queue.fail(lease, ErrorInfo("Boom"), Retry(timedelta(seconds=5)))

    assert state is JobState.DELAYED
    clock.advance(timedelta(seconds=5) - MS)
    assert queue.claim(ClaimRequest(["default"], lease=LEASE)) == []
    clock.advance(MS)
    [again] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    assert again.attempt == 2


def test_fail_with_dead_moves_the_job_to_the_dead_letters(queue: Queue) -> None:
    queue.enqueue(job(id="a", payload={"k": "v"}))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    state = queue.fail(lease, ErrorInfo("KeyError", "k"), Dead("permanent error"))

    assert state is JobState.DEAD
    [letter] = queue.dead("default")
    assert letter.job.payload == {"k": "v"}
    assert letter.reason == "permanent error"
    assert [e.type for e in letter.errors] == ["KeyError"]


def test_release_returns_the_job_ahead_of_later_jobs_but_behind_higher_priority(
    queue: Queue,
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.enqueue(job(id="urgent", priority=1))

    queue.release(lease)

    claimed = [each.job_id for each in queue.claim(ClaimRequest(["default"], lease=LEASE, limit=3))]
    assert claimed == ["urgent", "a", "b"]


def test_concurrent_claimers_never_get_the_same_job(queue: Queue) -> None:
    ids = [f"j{i}" for i in range(200)]
    queue.enqueue_many([job(id=job_id) for job_id in ids])
    claimed: list[list[str]] = [[] for _ in range(4)]

    def drain(mine: list[str]) -> None:
        while leases := queue.claim(ClaimRequest(["default"], lease=LEASE, limit=3)):
            mine += [lease.job_id for lease in leases]

    workers = [threading.Thread(target=drain, args=(mine,)) for mine in claimed]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    everything = [job_id for mine in claimed for job_id in mine]
    assert sorted(everything) == sorted(ids)


@pytest.mark.parametrize("ending", ["release", "lease lost"])
def test_a_job_given_back_without_delay_keeps_its_original_run_time(
    queue: Queue, clock: ManualClock, ending: str
) -> None:
    queue.enqueue(job(id="a", schedule=RunAfter(timedelta(seconds=3))))
    first_run_at = clock.now() + timedelta(seconds=3)
    clock.advance(timedelta(seconds=4))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    clock.advance(timedelta(seconds=1))

    if ending == "release":
        queue.release(lease)
    else:
        clock.advance(LEASE + MS)
        assert queue.reap() == 1

    record = queue.get("a")
    assert record is not None
    assert record.state is JobState.READY
    assert record.run_at == first_run_at


def test_renew_stores_the_progress_its_lease_carries_and_get_shows_it(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    first, second = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))

    queue.renew([attrs.evolve(first, progress=Progress(0.25, "step 1 of 4")), second], LEASE)
    queue.renew([first], LEASE)  # a renew without progress keeps the last one

    a, b = queue.get("a"), queue.get("b")
    assert a is not None
    assert b is not None
    assert (a.progress, b.progress) == (Progress(0.25, "step 1 of 4"), None)
    listed = queue.jobs("default", JobState.ACTIVE)
    assert [record.progress for record in listed] == [Progress(0.25, "step 1 of 4"), None]


def test_a_progress_note_utf8_cannot_carry_is_kept_escaped(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.renew([attrs.evolve(lease, progress=Progress(0.5, "file \udcff.csv"))], LEASE)

    record = queue.get("a")
    assert record is not None
    assert record.progress == Progress(0.5, "file \\udcff.csv")


def test_a_stale_lease_stores_no_progress(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.release(lease)

    queue.renew([attrs.evolve(lease, progress=Progress(0.5))], LEASE)

    record = queue.get("a")
    assert record is not None
    assert record.progress is None
