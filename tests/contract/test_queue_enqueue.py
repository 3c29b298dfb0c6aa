"""Contract: storing jobs (Q1), idempotent enqueue (Q8), unique keys (Q9), bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import (
    Dead,
    ErrorInfo,
    InvalidJob,
    JobState,
    Limit,
    Retry,
    RunAfter,
    UniqueSpec,
    UniqueUntil,
)
from foundry.ports import ClaimRequest, Duplicate, Enqueued
from tests.backends import LEASE, MS, Queue, job


def unique(key: str = "k", until: str = "finished", ttl: float = 3600) -> UniqueSpec:
    return UniqueSpec(key, ttl=timedelta(seconds=ttl), until=UniqueUntil(until))


def test_an_enqueued_job_is_stored_ready_with_its_payload(queue: Queue, clock: ManualClock) -> None:
    outcome = queue.enqueue(job(id="a", payload={"n": [1, 2.5, "x", None]}))

    record = queue.get("a")
    assert outcome == Enqueued("a")
    assert record is not None
    assert record.state is JobState.READY
    assert record.job.payload == {"n": [1, 2.5, "x", None]}
    assert record.attempts == 0
    assert record.enqueued_at == clock.now()


def test_each_job_keeps_the_ms_it_was_enqueued_at(queue: Queue, clock: ManualClock) -> None:
    # Around the places the stored time's base-36 digits turn over: its last digit (36 ms)
    # and its last two (1,296 ms), twice in one ms, and a move of more than 1,296 ms.
    start = int(clock.now().timestamp() * 1000)
    clock.advance((1296 - start % 1296 - 2) * MS)
    times = []
    for number, step in enumerate([0, 0, 1, 1, 1, 34, 1, 1, 1295, 1296, 5000, 1]):
        clock.advance(step * MS)
        queue.enqueue(job(id=f"j{number}"))
        times.append(clock.now())

    records = [queue.get(f"j{number}") for number in range(len(times))]

    assert [record.enqueued_at if record else None for record in records] == times


def test_a_job_with_a_delay_is_stored_delayed_until_its_run_time(
    queue: Queue, clock: ManualClock
) -> None:
    queue.enqueue(job(id="a", schedule=RunAfter(timedelta(seconds=3))))

    record = queue.get("a")

    assert record is not None
    assert record.state is JobState.DELAYED
    assert record.run_at == clock.now() + timedelta(seconds=3)


def test_resending_an_enqueue_with_the_same_id_changes_nothing(queue: Queue) -> None:
    queue.enqueue(job(id="a", payload={"v": 1}))

    outcome = queue.enqueue(job(id="a", payload={"v": 2}, priority=9))

    assert outcome == Enqueued("a")
    assert queue.stats("default").ready == 1
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    assert lease.job.payload == {"v": 1}


def test_resending_an_enqueue_of_a_running_job_changes_nothing(queue: Queue) -> None:
    queue.enqueue(job(id="a"))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    outcome = queue.enqueue(job(id="a"))

    assert outcome == Enqueued("a")
    assert queue.stats("default").ready == 0
    queue.complete(lease)


def test_enqueue_many_returns_one_outcome_per_job_in_order(queue: Queue) -> None:
    queue.enqueue(job(id="held", unique=unique("k1")))
    jobs = [
        job(id="a"),
        job(id="b", unique=unique("k1")),
        job(id="c", unique=unique("k2")),
        job(id="d", unique=unique("k2")),
        job(id="a"),
    ]

    outcomes = queue.enqueue_many(jobs)

    assert outcomes == [
        Enqueued("a"),
        Duplicate("b", "held"),
        Enqueued("c"),
        Duplicate("d", "c"),
        Enqueued("a"),
    ]
    assert queue.stats("default").ready == 3


def test_enqueue_many_with_a_payload_over_the_limit_writes_nothing(queue: Queue) -> None:
    too_big = job(id="bad")
    too_big.payload["blob"] = "x" * (600 * 1024)  # grown after validation, as callers can

    with pytest.raises(InvalidJob) as refused:
        queue.enqueue_many([job(id="ok"), too_big])

    assert refused.value.field == "payload"
    assert queue.get("ok") is None
    assert queue.get("bad") is None


def test_a_unique_key_refuses_a_second_job_while_the_first_is_pending(queue: Queue) -> None:
    queue.enqueue(job(id="a", unique=unique()))

    outcome = queue.enqueue(job(id="b", unique=unique()))

    assert outcome == Duplicate("b", "a")
    assert queue.get("b") is None


def test_unique_keys_are_per_queue(queue: Queue) -> None:
    queue.enqueue(job(id="a", queue="one", unique=unique()))

    outcome = queue.enqueue(job(id="b", queue="two", unique=unique()))

    assert outcome == Enqueued("b")


def test_a_key_held_until_started_is_free_once_the_job_is_claimed(queue: Queue) -> None:
    queue.enqueue(job(id="a", unique=unique(until="started")))
    queue.claim(ClaimRequest(["default"], lease=LEASE))

    outcome = queue.enqueue(job(id="b", unique=unique(until="started")))

    assert outcome == Enqueued("b")


def test_a_key_held_until_finished_blocks_while_running_and_frees_at_complete(
    queue: Queue,
) -> None:
    queue.enqueue(job(id="a", unique=unique()))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))

    while_running = queue.enqueue(job(id="b", unique=unique()))
    queue.complete(lease)
    after_complete = queue.enqueue(job(id="c", unique=unique()))

    assert while_running == Duplicate("b", "a")
    assert after_complete == Enqueued("c")


def test_a_key_held_until_finished_survives_a_retry_and_frees_when_dead(queue: Queue) -> None:
    queue.enqueue(job(id="a", unique=unique()))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom"), Retry(timedelta(0)))

    after_retry = queue.enqueue(job(id="b", unique=unique()))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom"), Dead("gave up"))
    after_dead = queue.enqueue(job(id="c", unique=unique()))

    assert after_retry == Duplicate("b", "a")
    assert after_dead == Enqueued("c")


def test_a_unique_key_expires_after_its_ttl(queue: Queue, clock: ManualClock) -> None:
    queue.enqueue(job(id="a", unique=unique(ttl=10)))

    clock.advance(timedelta(seconds=10) - MS)
    before = queue.enqueue(job(id="b", unique=unique(ttl=10)))
    clock.advance(MS)
    at_ttl = queue.enqueue(job(id="c", unique=unique(ttl=10)))

    assert before == Duplicate("b", "a")
    assert at_ttl == Enqueued("c")


def test_deleting_the_holder_frees_its_unique_key(queue: Queue) -> None:
    queue.enqueue(job(id="a", unique=unique()))

    deleted = queue.delete("default", "a")

    assert deleted is True
    assert queue.enqueue(job(id="b", unique=unique())) == Enqueued("b")


def test_purging_the_queue_frees_the_unique_keys_of_its_jobs(queue: Queue) -> None:
    queue.enqueue(job(id="a", unique=unique()))

    queue.purge("default")

    assert queue.enqueue(job(id="b", unique=unique())) == Enqueued("b")


def test_a_payload_nested_deeper_than_the_limit_is_refused_before_anything_is_written(
    queue: Queue,
) -> None:
    deep: dict[str, object] = {"n": 1}
    for _ in range(300):
        deep = {"a": deep}

    with pytest.raises(InvalidJob, match="nested deeper than 64 levels"):
        queue.enqueue(job(id="a", payload=deep))

    assert queue.get("a") is None


def test_keys_and_reasons_holding_a_nul_character_are_stored_and_kept_apart(
    queue: Queue,
) -> None:
    # A key filled from user input may hold any character; PostgreSQL's text cannot hold NUL.
    first = queue.enqueue(job(id="a", unique=unique("user:\x00"), limit=Limit("t\x00", 1)))
    second = queue.enqueue(job(id="b", unique=unique("user:\x00")))
    other = queue.enqueue(job(id="c", unique=unique("user:")))
    [lease] = queue.claim(ClaimRequest(["default"], lease=LEASE))
    queue.fail(lease, ErrorInfo("Boom", message="bad \x00 byte"), Dead("gave up on \x00"))
    cancelled = queue.cancel("c", reason="stop \x00")

    record = queue.get("a")
    assert (first, second, other) == (Enqueued("a"), Duplicate("b", "a"), Enqueued("c"))
    assert record is not None
    assert record.state is JobState.DEAD
    assert record.errors[-1].message == "bad \x00 byte"
    assert record.reason.startswith("gave up on ")
    assert cancelled is JobState.CANCELLED
