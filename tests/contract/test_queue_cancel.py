"""Contract: ``cancel`` ends a pending job as cancelled (kept, never run, its key freed, its
waiters woken) and leaves a running or ended job as it is."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import (
    Cancel,
    Dead,
    ErrorInfo,
    JobState,
    Retry,
    RetryPolicy,
    RunAfter,
    StaleLease,
    UniqueSpec,
)
from foundry.ports import ClaimRequest, Duplicate, Enqueued, Lease
from tests.backends import LEASE, Queue, job


def test_a_ready_job_is_cancelled_kept_with_its_reason_and_never_claimed(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])

    state = queue.cancel("a", reason="user left")

    assert state is JobState.CANCELLED
    record = queue.get("a")
    assert record is not None
    assert (record.state, record.reason) == (JobState.CANCELLED, "user left")
    claimed = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=5))
    assert [lease.job_id for lease in claimed] == ["b"]
    assert queue.stats("default").ready == 0


def test_a_delayed_job_is_cancelled_and_never_becomes_ready(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a", queue="mail", schedule=RunAfter(timedelta(minutes=5))))

    state = queue.cancel("a", queue="mail")
    clock.advance(timedelta(minutes=10))

    assert state is JobState.CANCELLED
    assert queue.claim(ClaimRequest(["mail"], lease=LEASE)) == []
    stats = queue.stats("mail")
    assert (stats.ready, stats.delayed) == (0, 0)


def test_a_running_job_is_left_running_until_its_worker_stops_it(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    state = queue.cancel("a")

    assert state is JobState.ACTIVE
    queue.complete(lease, 1)
    record = queue.get("a")
    assert record is not None
    assert record.state is JobState.COMPLETED


def test_an_ended_job_is_left_as_it_is_and_an_unknown_one_is_none(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)

    assert queue.cancel("a") is JobState.COMPLETED
    assert queue.cancel("nope") is None
    assert queue.cancel("a", queue="other") is None


def test_a_resent_cancel_changes_nothing(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    queue.cancel("a", reason="first")

    again = queue.cancel("a", reason="second")

    record = queue.get("a")
    assert record is not None
    assert (again, record.reason) == (JobState.CANCELLED, "first")


def test_cancelling_frees_the_unique_key(queue: Queue) -> None:
    spec = UniqueSpec("report:7", timedelta(hours=1))
    queue.enqueue(job(id="a", unique=spec))
    assert isinstance(queue.enqueue(job(id="b", unique=spec)), Duplicate)

    queue.cancel("a")

    assert queue.enqueue(job(id="c", unique=spec)) == Enqueued("c")


def test_a_waiter_of_a_cancelled_job_gets_the_cancelled_record(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    queue.cancel("a")

    record = queue.wait("a", timedelta(seconds=5))

    assert record is not None
    assert record.state is JobState.CANCELLED


def test_cancelled_jobs_are_listed_newest_first_apart_from_completed_ones(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b"), job(id="c")])
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)
    queue.cancel("b")
    clock.advance(timedelta(seconds=1))
    queue.cancel("c")

    cancelled = queue.jobs("default", JobState.CANCELLED)
    completed = queue.jobs("default", JobState.COMPLETED)

    assert [record.job.id for record in cancelled] == ["c", "b"]
    assert [record.job.id for record in completed] == ["a"]


def test_a_cancelled_record_is_forgotten_after_the_completed_ttl(
    make_queue: object, clock: ManualClock
) -> None:
    queue: Queue = make_queue(completed_ttl=timedelta(minutes=1))  # type: ignore[operator]
    queue.enqueue(job(id="a"))
    queue.cancel("a")

    clock.advance(timedelta(minutes=2))

    assert queue.get("a") is None


def _running(queue: Queue) -> Lease:
    queue.enqueue(job(id="a", retry=RetryPolicy(max_attempts=3)))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    return lease


def test_renew_tells_the_worker_of_a_running_job_that_a_cancel_asked_it_to_stop(
    queue: Queue,
) -> None:
    lease = _running(queue)
    queue.cancel("a", reason="first")
    queue.cancel("a", reason="second")

    [renewed] = queue.renew([lease], LEASE)

    assert renewed is not None
    assert renewed.stop == "first"


def test_a_lease_of_a_job_nobody_cancelled_has_no_stop(queue: Queue) -> None:
    lease = _running(queue)

    [renewed] = queue.renew([lease], LEASE)

    assert renewed is not None
    assert renewed.stop is None


def test_a_running_job_stopped_by_its_worker_ends_cancelled_and_wakes_its_waiters(
    queue: Queue,
) -> None:
    lease = _running(queue)
    queue.cancel("a", reason="customer left")

    state = queue.fail(lease, ErrorInfo("JobCancelled", "stopped"), Cancel("customer left"))

    assert state is JobState.CANCELLED
    record = queue.wait("a", timedelta(seconds=5))
    assert record is not None
    assert (record.state, record.reason, len(record.errors)) == (
        JobState.CANCELLED,
        "customer left",
        1,
    )
    assert queue.claim(ClaimRequest(["default"], lease=LEASE)) == []
    assert queue.fail(lease, ErrorInfo("JobCancelled", "stopped"), Cancel("x")) is (
        JobState.CANCELLED
    )


@pytest.mark.parametrize("how", ["retry", "release", "lost lease"])
def test_a_job_asked_to_stop_never_runs_again(queue: Queue, clock: ManualClock, how: str) -> None:
    lease = _running(queue)
    queue.cancel("a", reason="stop it")

    if how == "retry":
        assert queue.fail(lease, ErrorInfo("Boom", "x"), Retry(timedelta(0))) is (
            JobState.CANCELLED
        )
    elif how == "release":
        queue.release(lease)
    else:
        clock.advance(LEASE * 2)
        assert queue.reap() == 1

    record = queue.get("a")
    assert record is not None
    assert (record.state, record.reason) == (JobState.CANCELLED, "stop it")
    assert queue.claim(ClaimRequest(["default"], lease=LEASE)) == []


def test_a_lease_that_ended_a_stopped_job_can_only_resend_the_call_that_ended_it(
    queue: Queue,
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    released, failed = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))
    queue.cancel("a")
    queue.cancel("b")
    queue.release(released)
    queue.fail(failed, ErrorInfo("JobCancelled", "stopped"), Cancel("x"))

    queue.release(released)  # exact re-sends are answered as before (Q8)
    assert queue.fail(failed, ErrorInfo("JobCancelled", "stopped"), Cancel("x")) is (
        JobState.CANCELLED
    )
    with pytest.raises(StaleLease):
        queue.fail(released, ErrorInfo("Boom", "x"), Dead("gave up"))
    with pytest.raises(StaleLease):
        queue.release(failed)


def test_a_completion_or_death_of_a_job_asked_to_stop_stands(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    first, second = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))
    queue.cancel("a")
    queue.cancel("b")

    queue.complete(first, "done anyway")
    state = queue.fail(second, ErrorInfo("Boom", "x"), Dead("gave up"))

    a, b = queue.get("a"), queue.get("b")
    assert a is not None
    assert b is not None
    assert (a.state, a.result, state, b.state) == (
        JobState.COMPLETED,
        "done anyway",
        JobState.DEAD,
        JobState.DEAD,
    )


def test_a_dead_letter_requeued_after_a_stop_runs_again_unasked(queue: Queue) -> None:
    lease = _running(queue)
    queue.cancel("a")
    queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))
    queue.requeue_dead("default", ["a"])

    [again] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    [renewed] = queue.renew([again], LEASE)

    assert renewed is not None
    assert renewed.stop is None
