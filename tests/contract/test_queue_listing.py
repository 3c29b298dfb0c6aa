"""Contract: jobs(queue, state), a queue's jobs in one state, for inspection."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import Dead, ErrorInfo, InvalidQueueName, JobState, Retry, RunAfter
from foundry.ports import ClaimRequest
from tests.backends import LEASE, Queue, job

S = timedelta(seconds=1)


def ids(records: list) -> list[str]:  # type: ignore[type-arg]
    return [record.job.id for record in records]


def test_ready_jobs_are_listed_in_claim_order_and_paged(queue: Queue) -> None:
    queue.enqueue_many(
        [job(id="low", priority=-1), job(id="a"), job(id="high", priority=5), job(id="b")]
    )

    every = queue.jobs("default", JobState.READY)
    page = queue.jobs("default", JobState.READY, offset=1, limit=2)

    assert ids(every) == ["high", "a", "b", "low"]
    assert ids(page) == ["a", "b"]
    assert {record.state for record in every} == {JobState.READY}


def test_delayed_jobs_by_run_time_and_due_ones_listed_as_ready_in_claim_order(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="later", schedule=RunAfter(60 * S)))
    queue.enqueue(job(id="soon", schedule=RunAfter(10 * S)))
    queue.enqueue(job(id="due", schedule=RunAfter(5 * S)))
    queue.enqueue(job(id="now"))
    queue.enqueue(job(id="due-high", priority=3, schedule=RunAfter(5 * S)))
    clock.advance(7 * S)

    delayed = queue.jobs("default", JobState.DELAYED)
    ready = queue.jobs("default", JobState.READY)
    from_the_second = queue.jobs("default", JobState.READY, offset=1)

    assert ids(delayed) == ["soon", "later"]
    assert delayed[0].run_at == clock.now() + 3 * S
    assert ids(ready) == ["due-high", "due", "now"]
    assert ids(from_the_second) == ["due", "now"]
    [claimed] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    assert claimed.job_id == "due-high"


def test_active_jobs_by_deadline_name_the_worker_holding_them(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    queue.claim(ClaimRequest(["default"], lease=LEASE, worker="host:1:aa"))
    clock.advance(S)
    queue.claim(ClaimRequest(["default"], lease=LEASE, worker="host:2:bb"))

    active = queue.jobs("default", JobState.ACTIVE)

    assert ids(active) == ["a", "b"]
    assert [record.worker for record in active] == ["host:1:aa", "host:2:bb"]
    assert active[0].lease_deadline == clock.now() - S + LEASE
    assert queue.jobs("default", JobState.READY) == []


def test_completed_and_dead_jobs_newest_first(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue_many([job(id=name) for name in ("c1", "d1", "c2", "d2")])
    for name in ("c1", "d1", "c2", "d2"):
        clock.advance(S)
        [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
        assert lease.job_id == name
        if name.startswith("c"):
            queue.complete(lease, name)
        else:
            queue.fail(lease, ErrorInfo("Boom"), Dead("boom"))

    completed = queue.jobs("default", JobState.COMPLETED)
    dead = queue.jobs("default", JobState.DEAD, limit=1)

    assert ids(completed) == ["c2", "c1"]
    assert completed[0].result == "c2"
    assert completed[0].worker is None
    assert ids(dead) == ["d2"]
    assert dead[0].reason == "boom"


def test_an_ended_job_shows_the_run_time_its_schedule_gave_not_a_retry_s(
    queue: Queue, clock: ManualClock
) -> None:
    start = clock.now()
    queue.enqueue(job(id="retried"))
    queue.enqueue(job(id="scheduled", schedule=RunAfter(5 * S)))
    queue.enqueue(job(id="done"))
    queue.enqueue(job(id="stopped", schedule=RunAfter(9 * S)))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom", "once"), Retry(2 * S))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.complete(lease)
    clock.advance(6 * S)
    for _ in range(2):
        [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
        queue.fail(lease, ErrorInfo("Boom", "again"), Dead("gave up"))
    queue.cancel("stopped")

    listed = {
        record.job.id: record.run_at
        for state in (JobState.DEAD, JobState.COMPLETED, JobState.CANCELLED)
        for record in queue.jobs("default", state)
    }
    got = {job_id: getattr(queue.get(job_id), "run_at", None) for job_id in listed}

    expected = {
        "retried": start,
        "scheduled": start + 5 * S,
        "done": start,
        "stopped": start + 9 * S,
    }
    assert listed == expected
    assert got == expected


def test_nothing_is_listed_for_an_unknown_queue_a_bad_window_or_cancelled(
    queue: Queue,
) -> None:
    queue.enqueue(job(id="a"))

    listings = [
        queue.jobs("never-used", JobState.READY),
        queue.jobs("default", JobState.READY, limit=0),
        queue.jobs("default", JobState.READY, offset=-1),
        queue.jobs("default", JobState.CANCELLED),
    ]

    assert listings == [[], [], [], []]
    with pytest.raises(InvalidQueueName):
        queue.jobs("bad{name}", JobState.READY)


def test_completed_and_cancelled_jobs_each_fill_their_pages_whatever_lies_between(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue_many([job(id=f"c{n}") for n in range(3)])
    for lease in queue.claim(ClaimRequest(["default"], lease=LEASE, limit=3)):
        clock.advance(S)
        queue.complete(lease)
    queue.enqueue_many([job(id=f"x{n}") for n in range(4)])
    for n in range(4):
        clock.advance(S)
        queue.cancel(f"x{n}")

    first = queue.jobs("default", JobState.COMPLETED, limit=2)
    rest = queue.jobs("default", JobState.COMPLETED, offset=2, limit=2)
    cancelled = queue.jobs("default", JobState.CANCELLED, offset=1, limit=2)

    assert ids(first) == ["c2", "c1"]
    assert ids(rest) == ["c0"]
    assert ids(cancelled) == ["x2", "x1"]
