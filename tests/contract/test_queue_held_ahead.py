"""Contract: jobs claimed ahead of need (Q6): their attempt counts once their start is reported.

A claim's ``ahead`` last jobs are held unstarted: if such a lease lapses before its start is
reported (``ClaimRequest.started``, a renew of it as started, or the job settled), the job
comes back with the attempt unspent, at most ``UNSTARTED_LAPSES_MAX`` times; then its claims
count at once, so a job that kills its worker before its start is reported still ends dead.
"""

from __future__ import annotations

import attrs

from foundry.adapters.clock import ManualClock
from foundry.domain import JobState, RetryPolicy
from foundry.ports import UNSTARTED_LAPSES_MAX, ClaimRequest, Lease
from tests.backends import LEASE, MS, Queue, job


def _claim(queue: Queue, limit: int, ahead: int, **options: object) -> list[Lease]:
    return queue.claim(ClaimRequest(["default"], lease=LEASE, limit=limit, ahead=ahead, **options))  # type: ignore[arg-type]


def _lapse(queue: Queue, clock: ManualClock) -> int:
    clock.advance(LEASE + MS)
    return queue.reap()


def _attempts(queue: Queue, job_id: str) -> int:
    record = queue.get(job_id)
    assert record is not None
    return record.attempts


def test_the_last_ahead_jobs_of_a_claim_are_held_unstarted(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b"), job(id="c")])

    leases = _claim(queue, limit=3, ahead=2)

    assert [(lease.job_id, lease.ahead, lease.attempt) for lease in leases] == [
        ("a", False, 1),
        ("b", True, 1),
        ("c", True, 1),
    ]


def test_a_lease_held_ahead_that_lapses_unstarted_gives_its_attempt_back(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    _claim(queue, limit=2, ahead=1)

    assert _lapse(queue, clock) == 2

    assert (_attempts(queue, "a"), _attempts(queue, "b")) == (1, 0)
    record = queue.get("b")
    assert record is not None
    assert record.state is JobState.READY
    [again] = _claim(queue, limit=1, ahead=0)
    assert (again.job_id, again.attempt) == ("a", 2)  # b keeps its place behind a


def test_a_start_reported_with_the_next_claim_keeps_the_attempt_spent(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    [held] = _claim(queue, limit=1, ahead=1)

    assert _claim(queue, limit=1, ahead=1, started=[held])[0].job_id == "b"

    _lapse(queue, clock)
    assert (_attempts(queue, "a"), _attempts(queue, "b")) == (1, 0)


def test_a_renew_of_a_held_lease_as_started_reports_its_start(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    first, second = _claim(queue, limit=2, ahead=2)

    renewed = queue.renew([attrs.evolve(first, ahead=False), second], LEASE)

    assert all(lease is not None for lease in renewed)
    _lapse(queue, clock)
    assert (_attempts(queue, "a"), _attempts(queue, "b")) == (1, 0)


def test_a_start_reported_by_a_stale_lease_changes_nothing(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a"))
    [old] = _claim(queue, limit=1, ahead=1)
    _lapse(queue, clock)
    _claim(queue, limit=1, ahead=1)

    _claim(queue, limit=1, ahead=0, started=[old])

    _lapse(queue, clock)
    assert _attempts(queue, "a") == 0


def test_a_re_sent_claim_returns_its_leases_held_ahead_as_before(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    first = _claim(queue, limit=2, ahead=1, claim_token="tok")

    again = _claim(queue, limit=2, ahead=1, claim_token="tok")

    assert [(x.job_id, x.token, x.ahead) for x in again] == [
        (x.job_id, x.token, x.ahead) for x in first
    ]


def test_a_completed_or_released_held_job_spends_or_keeps_its_attempt_as_any_lease(
    queue: Queue,
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    done, back = _claim(queue, limit=2, ahead=2)

    queue.complete(done)
    queue.release(back)

    assert (_attempts(queue, "a"), _attempts(queue, "b")) == (1, 0)


def test_unstarted_lapses_are_bounded_so_a_worker_killer_still_ends_dead(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a", retry=RetryPolicy(max_attempts=1)))
    for _ in range(UNSTARTED_LAPSES_MAX):
        [held] = _claim(queue, limit=1, ahead=1)
        assert held.ahead
        _lapse(queue, clock)
        assert _attempts(queue, "a") == 0

    [counted] = _claim(queue, limit=1, ahead=1)
    assert not counted.ahead
    _lapse(queue, clock)

    [letter] = queue.dead("default")
    assert (letter.job.id, letter.reason, letter.attempts) == ("a", "lease lost", 1)
