"""Batches: the domain's rules of a batch's end (which callbacks fire, and when), the bad
batches it refuses, and dispatching batches (alone and as chain steps) on the memory queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.adapters.memory.transactions import MemoryTransactions
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.domain import (
    Batch,
    BatchNotFound,
    BatchProgress,
    Callback,
    ConfigurationError,
    Dead,
    ErrorInfo,
    InvalidJob,
    Job,
    JobState,
    MemberEnd,
    UniqueSpec,
    UnknownHandler,
)
from foundry.domain.batch import BATCH_KEY
from foundry.ports import ClaimRequest, Lease

registry = JobRegistry()
LEASE = timedelta(seconds=30)


@registry.job(name="resize", queue="media")
def resize(n: int) -> int:
    return n


@registry.job(name="done")
def done(note: str = "") -> str:
    return note


# -- the rules ----------------------------------------------------------------------------------


def test_then_and_finally_fire_once_at_the_last_completion() -> None:
    progress = BatchProgress(total=2)
    progress, fired = progress.ended(MemberEnd.COMPLETED)
    assert (fired, progress.pending, progress.succeeded) == ((), 1, None)

    progress, fired = progress.ended(MemberEnd.COMPLETED)

    assert fired == (Callback.THEN, Callback.FINALLY)
    assert (progress.finished, progress.succeeded) == (True, True)
    with pytest.raises(ValueError, match="pending"):
        progress.ended(MemberEnd.COMPLETED)


def test_catch_fires_at_the_first_failure_only() -> None:
    progress, fired = BatchProgress(total=3).ended(MemberEnd.FAILED)
    assert fired == (Callback.CATCH,)
    progress, fired = progress.ended(MemberEnd.FAILED)
    assert fired == ()

    progress, fired = progress.ended(MemberEnd.COMPLETED)

    assert fired == (Callback.FINALLY,)
    assert progress.succeeded is False


def test_allow_failures_runs_then_unless_cancelled() -> None:
    allowed = BatchProgress(total=2, allow_failures=True)
    progress, _ = allowed.ended(MemberEnd.FAILED)
    _, fired = progress.ended(MemberEnd.CANCELLED)
    assert fired == (Callback.THEN, Callback.FINALLY)

    cancelled = allowed.cancel()
    _, fired = cancelled.ended(MemberEnd.CANCELLED, 2)
    assert fired == (Callback.FINALLY,)


@given(st.lists(st.sampled_from(list(MemberEnd)), min_size=1, max_size=30), st.booleans())
def test_every_callback_fires_at_most_once_and_finally_exactly_once(
    ends: list[MemberEnd], allow_failures: bool
) -> None:
    progress = BatchProgress(total=len(ends), allow_failures=allow_failures)
    fired: list[Callback] = []
    for end in ends:
        progress, now = progress.ended(end)
        fired += now

    assert fired.count(Callback.FINALLY) == 1
    assert fired.count(Callback.CATCH) == (1 if MemberEnd.FAILED in ends else 0)
    all_completed = all(end is MemberEnd.COMPLETED for end in ends)
    assert fired.count(Callback.THEN) == (1 if all_completed or allow_failures else 0)
    assert fired[-1] is Callback.FINALLY


def test_bad_batches_are_refused_with_the_field_named() -> None:
    with pytest.raises(InvalidJob, match="at least one job"):
        Batch([])
    with pytest.raises(InvalidJob, match="share one queue"):
        Batch([Job("a"), Job("b", queue="other")])
    with pytest.raises(InvalidJob, match="unique"):
        Batch([Job("a", unique=UniqueSpec("k"))])
    with pytest.raises(InvalidJob, match="cannot wait"):
        Batch([Job("a", id="a")], {Callback.THEN: Job("t", after=("a",))})
    with pytest.raises(InvalidJob, match="then, catch or finally"):
        Batch([Job("a")], {"afterwards": Job("t")})


def test_a_cycle_among_members_is_named() -> None:
    jobs = [
        Job("a", id="a", after=("c",)),
        Job("b", id="b", after=("a",)),
        Job("c", id="c", after=("b",)),
    ]

    with pytest.raises(InvalidJob, match="cycle") as raised:
        Batch(jobs)

    assert "a -> c -> b -> a" in str(raised.value)


def test_members_are_put_after_the_members_they_wait_for() -> None:
    batch = Batch([Job("x", id="late", after=("early",)), Job("x", id="early")])

    assert [job.id for job in batch.jobs] == ["early", "late"]


# -- through the dispatcher ---------------------------------------------------------------------


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue(ManualClock())


@pytest.fixture
def dispatcher(queue: MemoryQueue) -> Dispatcher:
    return Dispatcher(queue, registry, ManualClock(), batches=queue)


def _drain(queue: MemoryQueue, queues: list[str], fail: str | None = None) -> list[str]:
    """Run every claimable job (``fail`` goes dead), in claim order; the ids run."""
    ran: list[str] = []
    while leases := queue.claim(ClaimRequest(queues, lease=LEASE, limit=1)):
        lease: Lease = leases[0]
        ran.append(lease.job.name)
        if lease.job.name == fail:
            queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))
        else:
            queue.complete(lease)
    return ran


def test_a_batch_runs_its_members_then_its_callbacks(
    dispatcher: Dispatcher, queue: MemoryQueue
) -> None:
    batch_id = dispatcher.batch(
        [(resize, {"n": 1}), (resize, {"n": 2})],
        then=(done, {"note": "ok"}),
        finally_=done,
    )

    assert _drain(queue, ["media"]) == ["resize", "resize", "done", "done"]
    record = dispatcher.batch_record(batch_id)
    assert record.state == "succeeded"
    then = queue.get(record.callbacks[Callback.THEN])
    assert then is not None
    assert (then.job.queue, then.job.metadata[BATCH_KEY]) == ("media", batch_id)


def test_bad_batches_are_refused_before_anything_is_sent(
    dispatcher: Dispatcher, queue: MemoryQueue
) -> None:
    with pytest.raises(InvalidJob, match="at least one job"):
        dispatcher.batch([])
    with pytest.raises(UnknownHandler):
        dispatcher.batch([(resize, {"n": 1}), ("nope", {})])
    with pytest.raises(InvalidJob, match="not in queue"):
        dispatcher.batch([dispatcher.build(resize, {"n": 1}, after=("missing",))])

    assert queue.stats("media").pending == 0
    assert queue.batches("media") == []
    with pytest.raises(BatchNotFound, match="no batch"):
        dispatcher.batch_record("missing")


def test_a_dispatcher_without_a_batch_store_says_how_to_get_one(queue: MemoryQueue) -> None:
    with pytest.raises(ConfigurationError, match="batches="):
        Dispatcher(queue, registry, ManualClock()).batch([(resize, {"n": 1})])


def test_a_chain_step_may_be_a_batch(dispatcher: Dispatcher, queue: MemoryQueue) -> None:
    middle = dispatcher.build_batch([(resize, {"n": 1}), (resize, {"n": 2})], finally_=done)

    ids = dispatcher.chain([(done, {"note": "first"}), middle, (done, {"note": "last"})])

    assert ids[1] == middle.id
    ran = _drain(queue, ["default"])
    assert ran == ["done", "resize", "resize", "done", "done"]
    last = queue.get(ids[2])
    assert last is not None
    assert last.state is JobState.COMPLETED


def test_a_failed_batch_stops_its_chain(dispatcher: Dispatcher, queue: MemoryQueue) -> None:
    middle = dispatcher.build_batch([(resize, {"n": 1})], catch=done)

    ids = dispatcher.chain([middle, (done, {"note": "last"})])

    assert _drain(queue, ["media"], fail="resize") == ["resize", "done"]
    last = queue.get(ids[1])
    assert last is not None
    assert (last.state, last.reason) == (JobState.CANCELLED, "dependency failed")


def test_cancel_batch_through_the_dispatcher(dispatcher: Dispatcher, queue: MemoryQueue) -> None:
    batch_id = dispatcher.batch([(resize, {"n": 1})], then=done)

    record = dispatcher.cancel_batch(batch_id, reason="changed my mind")

    assert (record.state, record.reason) == ("cancelled", "changed my mind")
    assert _drain(queue, ["media"]) == []
    with pytest.raises(BatchNotFound):
        dispatcher.cancel_batch("missing")


def test_a_batch_after_the_commit_is_sent_only_when_it_commits(queue: MemoryQueue) -> None:
    transactions = MemoryTransactions()
    dispatcher = Dispatcher(
        queue, registry, ManualClock(), commit_hooks=transactions, batches=queue
    )

    def rolled_back() -> None:
        with transactions.atomic():
            dispatcher.batch([(resize, {"n": 1})], after_commit=True, batch_id="rolled-back")
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError, match="rollback"):
        rolled_back()
    with transactions.atomic():
        kept = dispatcher.batch([(resize, {"n": 2})], after_commit=True)
        assert queue.batches("media") == []

    assert [record.id for record in queue.batches("media")] == [kept]
