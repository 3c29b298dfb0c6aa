"""Contract: batches (``BatchPort``, promises B1-B5). Jobs dispatched together in one write;
each member counted once when it ends; callbacks enqueued exactly once, atomically with the
end that fires them (catch at the first failure; then and finally at the last end); a cancel
stops the pending members; a job may wait for a batch's end."""

from __future__ import annotations

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.domain import (
    Batch,
    Dead,
    ErrorInfo,
    InvalidJob,
    Job,
    JobState,
    Limit,
    Rate,
    RetryPolicy,
    RunAfter,
)
from foundry.domain.batch import Callback
from foundry.ports import ClaimRequest, Lease
from tests.backends import LEASE, BatchQueue, job, state_of


def _claim(queue: BatchQueue, limit: int = 100) -> list[Lease]:
    return queue.claim(ClaimRequest(["default"], lease=LEASE, limit=limit))


def _batch(*ids: str, allow_failures: bool = False, batch_id: str = "b1") -> Batch:
    return Batch(
        [job(id=name) for name in ids],
        {
            Callback.THEN: job("on_then", id=f"{batch_id}-then"),
            Callback.CATCH: job("on_catch", id=f"{batch_id}-catch"),
            Callback.FINALLY: job("on_finally", id=f"{batch_id}-finally"),
        },
        allow_failures=allow_failures,
        id=batch_id,
    )


def _complete_all(queue: BatchQueue, *expected: str) -> None:
    """Claim exactly ``expected`` and complete them."""
    leases = _claim(queue)
    assert sorted(lease.job_id for lease in leases) == sorted(expected)
    queue.complete_many(leases)


def _fail(queue: BatchQueue, lease: Lease) -> None:
    queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))


def test_then_and_finally_are_enqueued_once_when_the_last_member_completes(
    batch_queue: BatchQueue,
) -> None:
    queue = batch_queue
    queue.enqueue_batches([_batch("a", "b", "c")])

    record = queue.batch("b1")
    assert record is not None
    assert (record.progress.total, record.progress.pending, record.state) == (3, 3, "running")
    first, *rest = _claim(queue)
    queue.complete(first)
    record = queue.batch("b1")
    assert record is not None
    assert (record.progress.completed, record.progress.pending) == (1, 2)
    assert state_of(queue, "b1-then") is None

    queue.complete_many(rest)

    record = queue.batch("b1")
    assert record is not None
    assert record.state == "succeeded"
    assert record.fired == {Callback.THEN, Callback.FINALLY}
    assert record.finished_at is not None
    assert [state_of(queue, f"b1-{name}") for name in ("then", "catch", "finally")] == [
        JobState.READY,
        None,
        JobState.READY,
    ]
    assert sorted(lease.job_id for lease in _claim(queue)) == ["b1-finally", "b1-then"]


def test_catch_fires_at_the_first_failure_once_and_then_never(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue_batches([_batch("a", "b", "c")])
    a, b, c = _claim(queue)

    _fail(queue, a)
    assert state_of(queue, "b1-catch") is JobState.READY
    _fail(queue, b)
    queue.complete(c)

    record = queue.batch("b1")
    assert record is not None
    progress = record.progress
    assert (progress.completed, progress.failed, progress.pending) == (1, 2, 0)
    assert record.state == "failed"
    assert record.fired == {Callback.CATCH, Callback.FINALLY}
    assert state_of(queue, "b1-then") is None
    claimed = sorted(lease.job_id for lease in _claim(queue))
    assert claimed == ["b1-catch", "b1-finally"]


def test_allow_failures_runs_then_despite_failures(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue_batches([_batch("a", "b", allow_failures=True)])
    a, b = _claim(queue)

    _fail(queue, a)
    queue.complete(b)

    record = queue.batch("b1")
    assert record is not None
    assert record.state == "succeeded"
    assert record.fired == {Callback.CATCH, Callback.THEN, Callback.FINALLY}


def test_a_lost_lease_death_and_a_delete_are_counted(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    queue = batch_queue
    member = job(id="a", retry=RetryPolicy(max_attempts=1))
    batch = Batch([member, job(id="b", schedule=RunAfter(timedelta(minutes=5)))], id="b1")
    queue.enqueue_batches([batch])
    _claim(queue)
    clock.advance(LEASE + timedelta(seconds=1))

    queue.reap()
    assert queue.delete("default", "b")

    record = queue.batch("b1")
    assert record is not None
    assert (record.progress.failed, record.progress.cancelled) == (1, 1)
    assert record.state == "failed"


def test_cancel_stops_pending_members_and_then_never_fires(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue_batches([_batch("a", "b", "c")])
    [running] = _claim(queue, limit=1)

    record = queue.cancel_batch("b1", reason="not needed")

    assert record is not None
    assert (record.state, record.reason) == ("cancelling", "not needed")
    assert record.progress.cancelled == 2
    assert [state_of(queue, name) for name in "bc"] == [JobState.CANCELLED] * 2
    [renewed] = queue.renew([running], LEASE)
    assert renewed is not None
    assert renewed.stop == "not needed"
    queue.complete(running)
    record = queue.batch("b1")
    assert record is not None
    assert record.state == "cancelled"
    assert record.fired == {Callback.FINALLY}
    assert state_of(queue, "b1-then") is None
    assert queue.cancel_batch("b1") == record  # an ended batch is left as it is


def test_a_job_waits_for_a_batch_and_runs_when_it_succeeded(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue_batches([job(id="first"), Batch([job(id="a", after=("first",))], id="b1")])
    queue.enqueue(job(id="next", after=("b1",)))

    assert state_of(queue, "a") is JobState.WAITING
    assert state_of(queue, "next") is JobState.WAITING
    _complete_all(queue, "first")
    _complete_all(queue, "a")

    assert state_of(queue, "next") is JobState.READY
    queue.enqueue(job(id="later", after=("b1",)))
    assert state_of(queue, "later") is JobState.READY


def test_a_job_waiting_for_a_failed_batch_is_cancelled(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue_batches(
        [
            Batch([job(id="a")], id="b1"),
            job(id="next", after=("b1",), after_failure="cancel"),
        ]
    )
    [lease] = _claim(queue)

    _fail(queue, lease)

    record = queue.get("next")
    assert record is not None
    assert (record.state, record.reason) == (JobState.CANCELLED, "dependency failed")


def test_a_batch_whose_record_expired_is_refused_as_a_dependency(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    queue = batch_queue
    queue.enqueue_batches([Batch([job(id="a")], id="b1")])
    _complete_all(queue, "a")
    clock.advance(timedelta(hours=2))  # past the ended batch's hour (no read since)

    with pytest.raises(InvalidJob, match="a job can wait only for jobs of its own queue"):
        queue.enqueue(job(id="next", after=("b1",)))
    with pytest.raises(InvalidJob, match="b1"):
        queue.enqueue_batches([Batch([job(id="m", after=("b1",))], id="b2")])

    assert [state_of(queue, name) for name in ("next", "m")] == [None, None]
    assert queue.batch("b1") is None


def test_a_job_never_takes_a_kept_batchs_id(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue_batches([Batch([job(id="a")], {Callback.THEN: job(id="t")}, id="b1")])

    with pytest.raises(InvalidJob, match="'b1' is a batch's id"):
        queue.enqueue(job(id="b1"))
    with pytest.raises(InvalidJob, match="'b1' is a batch's id"):
        queue.enqueue_many([job(id="x"), job(id="b1", priority=5)])
    with pytest.raises(InvalidJob, match="'b1' is a batch's id"):
        queue.enqueue_batches([Batch([job(id="b1")], id="b2")])
    with pytest.raises(InvalidJob, match="'b1' is a batch's id"):
        queue.enqueue_batches([Batch([job(id="m")], {Callback.THEN: job(id="b1")}, id="b3")])

    assert [state_of(queue, name) for name in ("x", "m")] == [None] * 2
    assert [queue.batch(name) for name in ("b2", "b3")] == [None] * 2
    _complete_all(queue, "a")
    assert state_of(queue, "t") is JobState.READY


def test_a_batch_never_takes_a_stored_jobs_id(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue(job(id="j1"))

    with pytest.raises(InvalidJob, match=r"'j1' is .*job"):
        queue.enqueue_batches([Batch([job(id="n")], id="j1")])

    assert state_of(queue, "n") is None
    assert queue.batch("j1") is None


def test_members_whose_dependency_already_failed_end_at_dispatch(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue(job(id="gone", schedule=RunAfter(timedelta(minutes=1))))
    queue.cancel("gone")

    members = [job(id="a", after=("gone",))]
    queue.enqueue_batches([Batch(members, {Callback.FINALLY: job("fin", id="fin")}, id="b1")])

    record = queue.batch("b1")
    assert record is not None
    assert (record.state, record.progress.failed) == ("failed", 1)
    assert state_of(queue, "fin") is JobState.READY


def test_bad_input_writes_nothing(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    with pytest.raises(InvalidJob, match="nowhere"):
        queue.enqueue_batches([_batch("a", "b"), job(id="c", after=("nowhere",))])

    assert queue.batch("b1") is None
    assert [state_of(queue, name) for name in ("a", "b", "c")] == [None] * 3
    with pytest.raises(InvalidJob, match="one queue"):
        queue.enqueue_batches([_batch("a"), job(id="x", queue="other")])
    assert queue.batch("b1") is None


def test_a_resent_dispatch_changes_nothing(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue_batches([_batch("a", "b")])
    [lease, _] = _claim(queue)
    queue.complete(lease)

    queue.enqueue_batches([_batch("a", "b")])

    record = queue.batch("b1")
    assert record is not None
    assert (record.progress.completed, record.progress.pending) == (1, 1)
    assert _claim(queue) == []


def test_a_batch_id_whose_record_expired_can_be_used_again(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    queue = batch_queue
    queue.enqueue_batches([Batch([job(id="a")], id="daily")])
    _complete_all(queue, "a")
    clock.advance(timedelta(hours=2))  # past the ended batch's hour

    queue.enqueue_batches([Batch([job(id="a2")], id="daily")])

    record = queue.batch("daily")
    assert record is not None
    assert (record.state, record.progress.pending) == ("running", 1)
    assert state_of(queue, "a2") is JobState.READY


def test_batches_are_listed_newest_first(batch_queue: BatchQueue, clock: ManualClock) -> None:
    queue = batch_queue
    queue.enqueue_batches([_batch("a", batch_id="b1")])
    clock.advance(timedelta(seconds=1))
    queue.enqueue_batches([_batch("b", batch_id="b2")])

    assert [record.id for record in queue.batches("default")] == ["b2", "b1"]
    assert [record.id for record in queue.batches("default", offset=1)] == ["b1"]
    assert queue.batch("b2", "default") is not None
    assert queue.batch("b2", "elsewhere") is None


def test_a_large_batch_in_one_call(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    ids = [f"m{index}" for index in range(2500)]
    queue.enqueue_batches([Batch([job(id=name) for name in ids], id="big")])

    done = 0
    while leases := _claim(queue, limit=1000):
        queue.complete_many(leases)
        done += len(leases)

    record = queue.batch("big")
    assert record is not None
    assert (done, record.progress.completed, record.state) == (2500, 2500, "succeeded")


def test_leases_that_lapse_together_set_off_callbacks_in_deadline_then_id_order(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    """A reap recovers the leases that lapsed by deadline, then job id, on every backend, so
    what they set off (here each batch's finally) is enqueued in that order, whatever order
    the jobs were enqueued and claimed in."""
    queue = batch_queue
    for name in ("b", "a"):
        member = job(id=name, retry=RetryPolicy(max_attempts=1))
        finally_ = job("on_finally", id=f"{name}-finally")
        queue.enqueue_batches([Batch([member], {Callback.FINALLY: finally_}, id=f"batch-{name}")])
    claimed = [lease.job_id for lease in _claim(queue, limit=1) + _claim(queue, limit=1)]
    assert claimed == ["b", "a"]  # one deadline: claimed at one moment for one lease time

    clock.advance(LEASE + timedelta(milliseconds=1))
    assert queue.reap() == 2

    assert [lease.job_id for lease in _claim(queue)] == ["a-finally", "b-finally"]


def test_a_cancelled_batch_passes_the_slot_its_ready_member_was_given_to_a_job_parked_behind(
    batch_queue: BatchQueue,
) -> None:
    def limited(job_id: str) -> Job:
        return job(id=job_id, limit=Limit("shared", concurrency=1))

    batch_queue.enqueue(limited("first"))
    batch_queue.enqueue_batches([Batch([limited("member")], id="b1")])
    batch_queue.enqueue(limited("behind"))
    claim = ClaimRequest(["default"], lease=LEASE, limit=5)
    [lease] = batch_queue.claim(claim)  # member and behind are parked
    batch_queue.complete(lease)  # member is ready, for the slot first gave back

    batch_queue.cancel_batch("b1")

    assert [lease.job_id for lease in batch_queue.claim(claim)] == ["behind"]


def test_a_cancelled_batch_passes_on_every_slot_its_ready_members_were_given(
    batch_queue: BatchQueue,
) -> None:
    def limited(job_id: str) -> Job:
        return job(id=job_id, limit=Limit("shared", concurrency=2))

    batch_queue.enqueue_many([limited("a"), limited("b")])
    batch_queue.enqueue_batches([Batch([limited("m1"), limited("m2")], id="b1")])
    batch_queue.enqueue_many([limited("p1"), limited("p2"), limited("p3")])
    claim = ClaimRequest(["default"], lease=LEASE, limit=10)
    running = batch_queue.claim(claim)  # a and b; the members and p1..p3 are parked
    batch_queue.complete_many(running)  # m1 and m2 are ready, for the slots a and b gave back

    batch_queue.cancel_batch("b1")

    assert [lease.job_id for lease in batch_queue.claim(claim)] == ["p1", "p2"]


def test_a_cancelled_batch_passes_its_ready_member_s_slot_past_its_parked_members(
    batch_queue: BatchQueue,
) -> None:
    def limited(job_id: str) -> Job:
        return job(id=job_id, limit=Limit("shared", concurrency=1))

    batch_queue.enqueue(limited("first"))
    batch_queue.enqueue_batches([Batch([limited("m1"), limited("m2")], id="b1")])
    batch_queue.enqueue(limited("behind"))
    claim = ClaimRequest(["default"], lease=LEASE, limit=5)
    [lease] = batch_queue.claim(claim)  # m1, m2 and behind are parked
    batch_queue.complete(lease)  # m1 is ready, for the slot first gave back

    batch_queue.cancel_batch("b1")

    assert [lease.job_id for lease in batch_queue.claim(claim)] == ["behind"]
    assert (state_of(batch_queue, "m1"), state_of(batch_queue, "m2")) == (
        JobState.CANCELLED,
        JobState.CANCELLED,
    )


def test_a_cancelled_batch_s_members_waiting_for_their_rate_pass_their_turns_on(
    batch_queue: BatchQueue, clock: ManualClock
) -> None:
    limit = Limit("api", rate=Rate(1, timedelta(hours=1)))
    queue = batch_queue
    queue.enqueue(job(id="first", limit=limit))
    members = [job(id=name, limit=limit) for name in ("m1", "m2")]
    queue.enqueue_batches([Batch(members, {}, id="b1")])
    queue.enqueue(job(id="last", limit=limit))
    started = [lease.job_id for lease in _claim(queue)]  # m1 holds the next turn

    queue.cancel_batch("b1")
    clock.advance(timedelta(hours=1))

    assert (started, [lease.job_id for lease in _claim(queue)]) == (["first"], ["last"])


def test_a_later_batch_never_takes_a_pending_callbacks_id(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    queue.enqueue_batches([_batch("a")])

    with pytest.raises(InvalidJob, match="'b1-then' is the then callback of batch 'b1'"):
        queue.enqueue_batches([Batch([job(id="n")], id="b1-then")])
    with pytest.raises(InvalidJob, match="'b1-catch' is the catch callback of batch 'b1'"):
        queue.enqueue_batches([Batch([job(id="b1-catch")], id="b2")])
    with pytest.raises(InvalidJob, match="'b1-finally' is the finally callback of batch 'b1'"):
        queue.enqueue_batches([Batch([job(id="m")], {Callback.THEN: job(id="b1-finally")})])

    assert [state_of(queue, name) for name in ("n", "m", "b1-catch")] == [None] * 3
    assert [queue.batch(name) for name in ("b1-then", "b2")] == [None] * 2
    _complete_all(queue, "a")
    assert [state_of(queue, name) for name in ("b1-then", "b1-finally")] == [JobState.READY] * 2
    queue.enqueue_batches([Batch([job(id="n")], id="b1-catch")])  # it never fires now
    assert state_of(queue, "n") is JobState.READY


def test_members_are_listed_in_the_batchs_order_after_they_ended(batch_queue: BatchQueue) -> None:
    queue = batch_queue
    first = job(id="first", after=("second",))
    queue.enqueue_batches([Batch([job(id="z"), first, job(id="second")], id="b1")])
    _complete_all(queue, "z", "second")
    _complete_all(queue, "first")

    assert queue.members("b1", "default") == ["z", "second", "first"]
    assert queue.members("b1", "other") is None
    assert queue.members("missing", "default") is None


def test_job_records_reads_jobs_in_the_order_asked_each_as_get_shows_it(
    batch_queue: BatchQueue,
) -> None:
    queue = batch_queue
    queue.enqueue_batches([Batch([job(id="a"), job(id="b"), job(id="c")], id="b1")])
    [lease] = _claim(queue, limit=1)
    queue.complete(lease, {"n": 1})
    asked = ["c", "missing", "a", "b"]

    records = queue.job_records(asked, "default")

    assert records == [queue.get(job_id, "default") for job_id in asked]
    assert [None if record is None else record.state for record in records] == [
        JobState.READY,
        None,
        JobState.COMPLETED,
        JobState.READY,
    ]
    assert records[2] is not None
    assert records[2].result == {"n": 1}
    assert queue.job_records(["a"], "other") == [None]
    assert queue.job_records([], "default") == []


def test_a_job_given_a_pending_callbacks_id_is_refused_until_its_batch_ended(
    batch_queue: BatchQueue,
) -> None:
    queue = batch_queue
    queue.enqueue_batches([_batch("a")])

    with pytest.raises(InvalidJob, match=r"'b1-then' is the then callback of batch 'b1' in"):
        queue.enqueue(job(id="b1-then"))
    with pytest.raises(InvalidJob, match=r"'b1-finally' is the finally callback of batch 'b1'"):
        queue.enqueue_many([job(id="other"), job(id="b1-finally")])

    assert state_of(queue, "other") is None
    _complete_all(queue, "a")
    assert [state_of(queue, name) for name in ("b1-then", "b1-finally")] == [JobState.READY] * 2
    queue.enqueue(job(id="b1-catch"))  # its batch ended without it: the id is free
    assert state_of(queue, "b1-catch") is JobState.READY
