"""Contract: completing a batch (``complete_many``) and completing a batch then claiming
(``complete_and_claim``), in one round trip where the backend can (Q4, Q8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from foundry.domain import MAX_RESULT_BYTES, InvalidResult, JobState
from foundry.ports import ClaimRequest
from tests.backends import LEASE, Queue, job


def test_complete_many_completes_each_lease_with_its_result(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    leases = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))

    applied = queue.complete_many(leases, [{"n": 1}, None])

    assert applied == [True, True]
    a, b = queue.get("a"), queue.get("b")
    assert a is not None
    assert b is not None
    assert (a.state, a.result, b.state, b.result) == (
        JobState.COMPLETED,
        {"n": 1},
        JobState.COMPLETED,
        None,
    )


def test_complete_many_reports_a_stale_lease_as_false_and_counts_it(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    first, second = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))
    queue.release(first)

    applied = queue.complete_many([first, second])

    assert applied == [False, True]
    stats = queue.stats("default")
    assert (stats.completed, stats.stale_rejected, stats.ready) == (1, 1, 1)


def test_completions_are_applied_and_the_next_jobs_claimed(queue: Queue) -> None:
    queue.enqueue_many([job(id=name) for name in "abc"])
    first = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))

    applied, claimed = queue.complete_and_claim(
        first, [{"n": 1}, None], ClaimRequest(["default"], lease=LEASE, limit=2)
    )

    assert applied == [True, True]
    assert [(lease.job_id, lease.attempt) for lease in claimed] == [("c", 1)]
    a, b = queue.get("a"), queue.get("b")
    assert a is not None
    assert b is not None
    assert (a.state, a.result, b.state) == (JobState.COMPLETED, {"n": 1}, JobState.COMPLETED)
    assert queue.stats("default").completed == 2


def test_a_stale_lease_is_reported_and_the_claim_still_happens(queue: Queue) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.release(lease)  # the lease is gone: "a" is ready again

    applied, claimed = queue.complete_and_claim(
        [lease], [None], ClaimRequest(["default"], lease=LEASE, limit=2)
    )

    assert applied == [False]
    assert sorted(x.job_id for x in claimed) == ["a", "b"]
    assert queue.stats("default").stale_rejected == 1


def test_completions_in_other_queues_ride_with_a_claim_over_several(queue: Queue) -> None:
    queue.enqueue_many([job(id="a", queue="one"), job(id="b", queue="two")])
    queue.enqueue(job(id="c", queue="three"))
    held = queue.claim(ClaimRequest(["one", "two"], lease=LEASE, limit=2))

    applied, claimed = queue.complete_and_claim(
        held, [None, None], ClaimRequest(["one", "two", "three"], lease=LEASE, limit=3)
    )

    assert applied == [True, True]
    assert [x.job_id for x in claimed] == ["c"]
    assert [queue.stats(name).completed for name in ("one", "two")] == [1, 1]


def test_with_nothing_to_claim_the_completions_are_still_written(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    held = queue.claim(ClaimRequest(["default"], lease=LEASE))

    applied, claimed = queue.complete_and_claim(
        held, [None], ClaimRequest(["default"], lease=LEASE, wait=timedelta(milliseconds=20))
    )

    assert (applied, claimed) == ([True], [])
    record = queue.get("a")
    assert record is not None
    assert record.state is JobState.COMPLETED


def test_a_resent_complete_and_claim_returns_the_same_leases_and_completes_nothing_twice(
    queue: Queue,
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b")])
    held = queue.claim(ClaimRequest(["default"], lease=LEASE))
    request = ClaimRequest(["default"], lease=LEASE, claim_token="tok")

    once = queue.complete_and_claim(held, [None], request)
    twice = queue.complete_and_claim(held, [None], request)

    assert once == twice
    assert [x.job_id for x in once[1]] == ["b"]
    stats = queue.stats("default")
    assert (stats.completed, stats.active, stats.ready) == (1, 1, 0)


def test_with_no_completions_it_is_a_claim(queue: Queue) -> None:
    queue.enqueue(job(id="a"))

    applied, claimed = queue.complete_and_claim([], [], ClaimRequest(["default"], lease=LEASE))

    assert applied == []
    assert [x.job_id for x in claimed] == ["a"]


def test_a_result_that_is_not_json_is_refused_naming_its_type_and_nothing_is_written(
    queue: Queue,
) -> None:
    queue.enqueue_many([job(id="a"), job(id="b"), job(id="c")])
    a, b = queue.claim(ClaimRequest(["default"], lease=LEASE, limit=2))
    request = ClaimRequest(["default"], lease=LEASE)

    with pytest.raises(InvalidResult, match=r"of type complex\b.*return JSON data"):
        queue.complete(a, 1j)
    with pytest.raises(InvalidResult, match=r"of type object\b"):
        queue.complete_many([a, b], [None, object()])
    with pytest.raises(InvalidResult, match=r"of type dict\b"):
        queue.complete_and_claim([a, b], [{"when": object()}, None], request)
    with pytest.raises(InvalidResult, match=r"of type bytes\b.*decode them to a str"):
        queue.complete(a, b"\x00\xff")
    with pytest.raises(InvalidResult, match=r"of type dict\b.*holds nan.*read back as None"):
        queue.complete_many([a, b], [None, {"ratio": float("nan")}])
    with pytest.raises(InvalidResult, match=rf"of type str\b.*the limit is {MAX_RESULT_BYTES}"):
        queue.complete(a, "x" * (MAX_RESULT_BYTES - 1))  # and two quotes

    records = [queue.get(job_id) for job_id in "abc"]
    assert [record.state for record in records if record is not None] == [
        JobState.ACTIVE,
        JobState.ACTIVE,
        JobState.READY,
    ]
    assert queue.stats("default").completed == 0


@attrs.frozen
class Report:
    rows: int = 0
    took: timedelta = timedelta(seconds=1.5)
    at: datetime = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_a_result_reads_back_as_its_json_data_with_every_field_and_iso_times(
    queue: Queue,
) -> None:
    queue.enqueue(job(id="a"))
    (lease,) = queue.claim(ClaimRequest(["default"], lease=LEASE))

    queue.complete(lease, {"report": Report(), "at": datetime(2030, 1, 1, tzinfo=UTC)})

    record = queue.get("a")
    assert record is not None
    assert record.result == {
        "report": {"rows": 0, "took": 1.5, "at": "2030-01-02T03:04:05.000006+00:00"},
        "at": "2030-01-01T00:00:00+00:00",
    }


def test_a_result_as_large_as_the_limit_is_stored(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    (lease,) = queue.claim(ClaimRequest(["default"], lease=LEASE))
    largest = "x" * (MAX_RESULT_BYTES - 2)  # and two quotes

    queue.complete(lease, largest)

    record = queue.get("a")
    assert record is not None
    assert record.result == largest
