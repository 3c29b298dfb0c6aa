"""Contract: limits per key, enforced where jobs are claimed (concurrency and rate)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import ErrorInfo, JobState, Limit, Rate, Retry
from foundry.ports import ClaimRequest, Lease
from tests.backends import LEASE, Queue, QueueBackend, job, state_of

ALL = ClaimRequest(["default"], lease=LEASE, limit=10)


def _limited(job_id: str, key: str = "tenant:1", **limit: object) -> object:
    return job(id=job_id, limit=Limit(key, **limit))  # type: ignore[arg-type]


def _claim(queue: Queue) -> list[str]:
    return [lease.job_id for lease in queue.claim(ALL)]


def test_no_more_jobs_of_a_key_run_at_once_than_its_concurrency(queue: Queue) -> None:
    queue.enqueue_many([_limited(f"j{n}", concurrency=2) for n in range(5)])  # type: ignore[misc]

    first = _claim(queue)
    second = _claim(queue)

    assert first == ["j0", "j1"]
    assert second == []


def test_a_job_over_its_limit_spends_no_attempt_and_waits_counted_as_pending(
    queue: Queue,
) -> None:
    queue.enqueue_many([_limited(f"j{n}", concurrency=1) for n in range(3)])  # type: ignore[misc]

    _claim(queue)

    stats = queue.stats("default")
    assert (stats.active, stats.pending) == (1, 2)
    record = queue.get("j1")
    assert record is not None
    assert record.attempts == 0
    assert record.state in (JobState.READY, JobState.DELAYED)


def test_other_keys_jobs_behind_a_limited_one_are_claimed(queue: Queue) -> None:
    queue.enqueue_many(
        [
            _limited("a1", "a", concurrency=1),  # type: ignore[list-item]
            _limited("a2", "a", concurrency=1),  # type: ignore[list-item]
            _limited("a3", "a", concurrency=1),  # type: ignore[list-item]
            _limited("b1", "b", concurrency=1),  # type: ignore[list-item]
            job(id="free"),
        ]
    )

    claimed = _claim(queue)

    assert claimed == ["a1", "b1", "free"]


def _finish(queue: Queue, lease: Lease, how: str, clock: ManualClock) -> None:
    if how == "complete":
        queue.complete(lease)
    elif how == "fail":
        queue.fail(lease, ErrorInfo("Boom"), Retry(timedelta(hours=1)))
    elif how == "release":
        queue.release(lease, timedelta(hours=1))
    else:
        clock.advance(LEASE + timedelta(seconds=1))
        queue.reap()


def test_a_slot_freed_by_any_end_of_a_lease_lets_the_next_parked_job_run(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue_many([_limited(f"j{n}", concurrency=1) for n in range(5)])  # type: ignore[misc]
    [lease] = queue.claim(ALL)
    order = []

    for how in ("complete", "fail", "release", "lapse"):
        _finish(queue, lease, how, clock)
        [lease] = queue.claim(ALL)
        order.append(lease.job_id)

    assert order == ["j1", "j2", "j3", "j3"]  # a lapsed job is back ahead of the parked ones


def test_a_rate_spaces_the_starts_of_a_key_and_each_comes_back_when_due(
    queue: Queue, clock: ManualClock
) -> None:
    rate = Rate(2, timedelta(seconds=1))  # one start every 500 ms
    queue.enqueue_many([_limited(f"j{n}", rate=rate) for n in range(3)])  # type: ignore[misc]
    queue.enqueue(job(id="free"))

    now = _claim(queue)
    clock.advance(timedelta(milliseconds=499))
    early = _claim(queue)
    clock.advance(timedelta(milliseconds=1))
    second = _claim(queue)
    clock.advance(timedelta(milliseconds=500))
    third = _claim(queue)

    assert (now, early, second, third) == (["j0", "free"], [], ["j1"], ["j2"])
    assert queue.get("j2").attempts == 1  # type: ignore[union-attr]


def test_a_job_waiting_for_its_rate_is_delayed_until_its_start(
    queue: Queue, clock: ManualClock
) -> None:
    rate = Rate(1, timedelta(seconds=10))
    queue.enqueue_many([_limited(f"j{n}", rate=rate) for n in range(2)])  # type: ignore[misc]

    _claim(queue)

    record = queue.get("j1")
    assert record is not None
    assert record.state is JobState.DELAYED
    assert record.run_at == clock.now() + timedelta(seconds=10)


def test_concurrency_and_rate_together_park_first_and_keep_the_rate(
    queue: Queue, clock: ManualClock
) -> None:
    rate = Rate(1, timedelta(seconds=1))
    queue.enqueue_many(
        [_limited(f"j{n}", concurrency=1, rate=rate) for n in range(2)]  # type: ignore[misc]
    )
    [lease] = queue.claim(ALL)

    queue.complete(lease)
    right_after = _claim(queue)
    clock.advance(timedelta(seconds=1))
    later = _claim(queue)

    assert (right_after, later) == ([], ["j1"])


def test_limits_are_per_queue_and_key(queue: Queue) -> None:
    queue.enqueue_many(
        [
            _limited("a1", "k", concurrency=1),  # type: ignore[list-item]
            job(id="o1", queue="other", limit=Limit("k", concurrency=1)),
        ]
    )

    claimed = [
        lease.job_id
        for lease in queue.claim(ClaimRequest(["default", "other"], lease=LEASE, limit=5))
    ]

    assert sorted(claimed) == ["a1", "o1"]


def test_a_payload_holding_a_limit_field_neither_limits_nor_hides_the_job_s_limit(
    queue: Queue,
) -> None:
    lookalike = {"limit": {"key": "tenant:1", "concurrency": 1}}
    queue.enqueue_many(
        [
            job(id="p1", payload=lookalike),
            job(id="p2", payload=lookalike),
            job(id="l1", payload=lookalike, limit=Limit("real", concurrency=1)),
            job(id="l2", payload=lookalike, limit=Limit("real", concurrency=1)),
        ]
    )

    claimed = _claim(queue)

    assert claimed == ["p1", "p2", "l1"]


def test_a_parked_job_cancelled_or_deleted_leaves_the_next_parked_one_first_in_line(
    queue: Queue,
) -> None:
    queue.enqueue_many([_limited(f"j{n}", concurrency=1) for n in range(4)])  # type: ignore[misc]
    [lease] = queue.claim(ALL)
    _claim(queue)  # j1, j2 and j3 are parked

    queue.cancel("j1")
    queue.delete("default", "j2")
    queue.complete(lease)

    assert _claim(queue) == ["j3"]


def test_a_job_made_ready_by_a_freed_slot_then_cancelled_or_deleted_passes_the_slot_on(
    queue: Queue,
) -> None:
    queue.enqueue_many([_limited(f"j{n}", concurrency=1) for n in range(5)])  # type: ignore[misc]
    [lease] = queue.claim(ALL)  # the others are parked

    queue.complete(lease)  # j1 is ready, for the slot j0 gave back
    queue.cancel("j1")
    [lease] = queue.claim(ALL)
    after_cancel = lease.job_id
    queue.complete(lease)  # j3 is ready
    queue.delete("default", "j3")

    assert (after_cancel, _claim(queue)) == ("j2", ["j4"])


@pytest.mark.parametrize("order", [range(1, 9), range(8, 0, -1)], ids=["first", "last"])
def test_jobs_cancelled_or_deleted_while_waiting_for_their_rate_give_their_turns_on(
    queue: Queue, clock: ManualClock, order: range
) -> None:
    rate = Rate(1, timedelta(hours=1))
    queue.enqueue_many([_limited(f"j{n}", rate=rate) for n in range(10)])  # type: ignore[misc]
    first = _claim(queue)  # j1 to j9 wait for their turns

    for n in order:  # the job next in line first, or the others first
        queue.cancel(f"j{n}") if n % 2 else queue.delete("default", f"j{n}")
    clock.advance(timedelta(hours=1))

    assert (first, _claim(queue)) == (["j0"], ["j9"])


@pytest.mark.parametrize("how", ["cancel", "delete"])
def test_a_ready_job_that_no_freed_slot_made_ready_leaving_unparks_none(
    queue: Queue, how: str
) -> None:
    queue.enqueue_many([_limited(f"j{n}", concurrency=1) for n in range(4)])  # type: ignore[misc]
    [lease] = queue.claim(ALL)  # j1, j2 and j3 are parked
    queue.enqueue(_limited("new", concurrency=1))  # type: ignore[arg-type]

    queue.complete(lease)  # j1 is ready, for the slot j0 gave back
    queue.cancel("new") if how == "cancel" else queue.delete("default", "new")  # no slot to pass
    order = []
    for _ in range(3):
        [lease] = queue.claim(ALL)
        order.append(lease.job_id)
        queue.complete(lease)

    assert order == ["j1", "j2", "j3"]  # j2 was not made ready early, then parked again last


def test_a_job_holding_its_key_s_rate_turn_found_undecodable_leaves_its_line_moving(
    queue: Queue, queue_backend: QueueBackend, clock: ManualClock
) -> None:
    rate = Rate(1, timedelta(hours=1))
    queue.enqueue_many([_limited(f"j{n}", rate=rate) for n in range(3)])  # type: ignore[misc]
    first = _claim(queue)  # j1 holds the next turn, j2 waits in line
    queue_backend.corrupt(queue, "default", "j1")

    clock.advance(timedelta(hours=1))
    _claim(queue)  # j1 goes dead, undecodable
    clock.advance(timedelta(hours=1))
    queue.enqueue(_limited("j3", rate=rate))  # type: ignore[arg-type]
    started = _claim(queue) + _claim(queue)

    assert (first, state_of(queue, "j1")) == (["j0"], JobState.DEAD)
    assert "j2" in started
