"""Contract: ``wait`` returns a job's record once it ended (completed, dead, forgotten), woken
by the transition that ends it; the record as it is when the time runs out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from foundry.domain import Dead, ErrorInfo, JobState
from foundry.ports import ClaimRequest, JobRecord
from tests.backends import LEASE, Queue, job

LONG = timedelta(seconds=30)


def _waiting(queue: Queue, job_id: str) -> Callable[[], JobRecord | None]:
    """Start ``wait`` in a thread; the returned function joins it and gives its answer."""
    answer: list[JobRecord | None] = []
    thread = threading.Thread(target=lambda: answer.append(queue.wait(job_id, LONG)), daemon=True)
    thread.start()

    def join() -> JobRecord | None:
        thread.join(LONG.total_seconds())
        assert answer, "wait did not return"
        return answer[0]

    return join


def test_a_completed_job_is_returned_at_once_with_its_result(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease, {"total": 3})

    record = queue.wait("a", timedelta(0))

    assert record is not None
    assert (record.state, record.result) == (JobState.COMPLETED, {"total": 3})


def test_an_unknown_job_is_none(queue: Queue) -> None:
    queue.enqueue(job(id="a"))

    assert queue.wait("nope", timedelta(seconds=1)) is None
    assert queue.wait("nope", timedelta(seconds=1), queue="default") is None


def test_a_job_still_pending_when_the_time_runs_out_is_returned_as_it_is(queue: Queue) -> None:
    queue.enqueue(job(id="a"))

    at_once = queue.wait("a", timedelta(0))
    later = queue.wait("a", timedelta(milliseconds=50))

    assert at_once is not None
    assert later is not None
    assert (at_once.state, later.state) == (JobState.READY, JobState.READY)


def test_every_waiter_wakes_when_the_job_completes(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    waiters = [_waiting(queue, "a") for _ in range(3)]

    queue.complete(lease, [1, 2])

    for join in waiters:
        record = join()
        assert record is not None
        assert (record.state, record.result) == (JobState.COMPLETED, [1, 2])


def test_a_waiter_wakes_with_the_dead_record_and_its_errors(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    join = _waiting(queue, "a")

    queue.fail(lease, ErrorInfo("Boom", "it broke"), Dead("gave up"))

    record = join()
    assert record is not None
    assert (record.state, record.reason) == (JobState.DEAD, "gave up")
    assert [(error.type, error.message) for error in record.errors] == [("Boom", "it broke")]


def test_a_waiter_of_a_job_completed_in_a_batch_wakes(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    leases = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))
    join = _waiting(queue, "b")

    queue.complete_many(leases, ["x", "y"])

    record = join()
    assert record is not None
    assert record.result == "y"


def test_a_waiter_of_a_deleted_job_gets_none(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    join = _waiting(queue, "a")

    assert queue.delete("default", "a")

    assert join() is None
