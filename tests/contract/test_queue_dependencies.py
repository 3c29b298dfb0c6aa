"""Contract: a job enqueued ``after`` others of its queue waits until they all completed; the
completion of the last one makes it ready (no polling). A dependency that goes dead, is
cancelled or deleted makes it dead with reason ``dependency failed``, unless it runs anyway."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import Dead, ErrorInfo, InvalidJob, Job, JobState, RunAfter
from foundry.ports import ClaimRequest
from tests.backends import LEASE, Queue, job, state_of


def _run(queue: Queue, *expected: str) -> None:
    """Claim exactly ``expected`` (in order) and complete them."""
    leases = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=10))
    assert [lease.job_id for lease in leases] == list(expected)
    queue.complete_many(leases)


def test_a_job_waits_until_every_job_it_names_completed(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    queue.enqueue(job(id="c", after=("a", "b")))

    assert state_of(queue, "c") is JobState.WAITING
    [first] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(first)
    assert state_of(queue, "c") is JobState.WAITING
    _run(queue, "b")

    assert state_of(queue, "c") is JobState.READY
    _run(queue, "c")


def test_a_dependency_earlier_in_the_same_batch_counts(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b", after=("a",)), job(id="c", after=("b",))])

    _run(queue, "a")
    _run(queue, "b")
    _run(queue, "c")

    assert [state_of(queue, name) for name in "abc"] == [JobState.COMPLETED] * 3


def test_a_dependency_already_completed_does_not_hold_the_job(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    _run(queue, "a")

    queue.enqueue(job(id="b", after=("a",)))

    assert state_of(queue, "b") is JobState.READY


def test_a_dependency_that_goes_dead_makes_the_waiting_jobs_dead(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    queue.enqueue_many([job(id="b", after=("a",)), job(id="c", after=("b",))])
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))

    for name in "bc":
        record = queue.get(name)
        assert record is not None
        assert (record.state, record.reason) == (JobState.DEAD, "dependency failed")
        assert record.errors[-1].type == "DependencyFailed"
    assert queue.claim(ClaimRequest(["default"], lease=LEASE)) == []


@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_a_cancelled_or_deleted_dependency_fails_the_waiting_job(queue: Queue, how: str) -> None:
    queue.enqueue(job(id="a", schedule=RunAfter(timedelta(minutes=1))))
    queue.enqueue(job(id="b", after=("a",)))

    if how == "cancel":
        queue.cancel("a")
    else:
        assert queue.delete("default", "a")

    record = queue.get("b")
    assert record is not None
    assert (record.state, record.reason) == (JobState.DEAD, "dependency failed")


def test_a_job_that_runs_after_failure_runs_when_its_dependency_dies(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    queue.enqueue(job(id="b", after=("a",), after_failure="run"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))

    assert state_of(queue, "b") is JobState.READY


def test_a_job_after_an_already_dead_one_is_dead_at_once(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))

    queue.enqueue(job(id="b", after=("a",)))

    record = queue.get("b")
    assert record is not None
    assert (record.state, record.reason) == (JobState.DEAD, "dependency failed")


def test_a_waiting_job_keeps_its_own_delay_after_its_dependencies(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a"))
    queue.enqueue(job(id="b", after=("a",), schedule=RunAfter(timedelta(minutes=5))))

    _run(queue, "a")
    delayed = state_of(queue, "b")
    clock.advance(timedelta(minutes=5))

    assert (delayed, state_of(queue, "b")) == (JobState.DELAYED, JobState.READY)


def test_a_waiting_job_can_be_cancelled_or_deleted(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    queue.enqueue_many([job(id="b", after=("a",)), job(id="c", after=("a",))])

    assert queue.cancel("b") is JobState.CANCELLED
    assert queue.delete("default", "c")
    _run(queue, "a")

    assert (state_of(queue, "b"), state_of(queue, "c")) == (JobState.CANCELLED, None)
    assert queue.claim(ClaimRequest(["default"], lease=LEASE)) == []


def test_waiting_jobs_are_listed_in_enqueue_order(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    queue.enqueue_many([job(id="c", after=("a",)), job(id="b", after=("a",))])

    listed = queue.jobs("default", JobState.WAITING)

    assert [record.job.id for record in listed] == ["c", "b"]
    assert listed[0].job.after == ("a",)


@pytest.mark.parametrize(
    "jobs",
    [
        [job(id="b", after=("nope",))],
        [job(id="b", after=("c",)), job(id="c")],  # a later job of the batch
        [job(id="b", queue="other", after=("a",))],  # another queue's job
    ],
)
def test_a_dependency_the_queue_does_not_hold_is_refused_and_nothing_is_written(
    queue: Queue, jobs: list[Job]
) -> None:
    queue.enqueue(job(id="a"))

    with pytest.raises(InvalidJob, match="a job can wait only for jobs of its own queue"):
        queue.enqueue_many(jobs)

    assert [queue.get(each.id) for each in jobs] == [None] * len(jobs)


def test_a_job_that_is_cancelled_after_failure_ends_cancelled_with_the_rest(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    queue.enqueue_many(
        [job(id="b", after=("a",), after_failure="cancel"), job(id="c", after=("b",))]
    )
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))

    b, c = queue.get("b"), queue.get("c")
    assert b is not None
    assert c is not None
    assert (b.state, b.reason, c.state, c.reason) == (
        JobState.CANCELLED,
        "dependency failed",
        JobState.DEAD,
        "dependency failed",
    )
    queue.enqueue(job(id="d", after=("a",), after_failure="cancel"))
    assert state_of(queue, "d") is JobState.CANCELLED


def test_a_deleted_dependency_cancels_a_job_that_is_cancelled_after_failure(
    queue: Queue,
) -> None:
    queue.enqueue(job(id="a"))
    queue.enqueue(job(id="b", after=("a",), after_failure="cancel"))

    assert queue.delete("default", "a")

    record = queue.get("b")
    assert record is not None
    assert (record.state, record.reason) == (JobState.CANCELLED, "dependency failed")


@pytest.mark.parametrize("end", ["completed", "cancelled"])
def test_a_dependency_whose_record_expired_is_refused_as_one_never_stored(
    queue: Queue, clock: ManualClock, end: str
) -> None:
    queue.enqueue(job(id="a"))
    if end == "completed":
        _run(queue, "a")
    else:
        queue.cancel("a")
    clock.advance(timedelta(hours=2))  # past the record's hour
    assert queue.get("a") is None

    with pytest.raises(InvalidJob, match="a job can wait only for jobs of its own queue"):
        queue.enqueue(job(id="b", after=("a",)))

    assert queue.get("b") is None
