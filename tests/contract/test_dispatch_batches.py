"""Batches through the public dispatchers: the sync ``Dispatcher`` and the ``AsyncDispatcher``
dispatch, read and cancel the same batches (alone and as chain steps), on every queue backend
that keeps batches; and refuse them the same way where none is kept."""

from __future__ import annotations

import threading
from datetime import timedelta

import attrs
import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.registry import JobRegistry
from foundry.domain import (
    BatchNotFound,
    BatchTimeout,
    Callback,
    ConfigurationError,
    Dead,
    ErrorInfo,
    InvalidJob,
    JobFailed,
    JobNotFound,
    JobState,
    ResultTimeout,
    UnknownHandler,
)
from foundry.domain.batch import BATCH_KEY
from foundry.ports import ClaimRequest, Lease
from tests.backends import LEASE, QUEUE_BACKENDS, BatchQueue, QueueBackend
from tests.dispatch_support import AnyDispatcher, Dispatchers

registry = JobRegistry()


@registry.job(name="resize", queue="media")
def resize(n: int) -> int:
    return n


@registry.job(name="done")
def done(note: str = "") -> str:
    return note


@pytest.fixture
def dispatcher(
    dispatchers: Dispatchers, batch_backend: QueueBackend, batch_queue: BatchQueue
) -> AnyDispatcher:
    """Each dispatcher in turn, over the current backend's queue and its batches."""
    return dispatchers.over(batch_backend, batch_queue, registry)


def _drain(queue: BatchQueue, queues: list[str], fail: str | None = None) -> list[str]:
    """Run every claimable job (``fail`` goes dead; the others return their payload's
    ``n``), in claim order; the names run."""
    ran: list[str] = []
    while leases := queue.claim(ClaimRequest(queues, lease=LEASE, limit=1)):
        lease: Lease = leases[0]
        ran.append(lease.job.name)
        if lease.job.name == fail:
            queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))
        else:
            queue.complete(lease, lease.job.payload.get("n"))
    return ran


def test_a_batch_runs_its_members_then_its_callbacks(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    batch_id = dispatcher.batch(
        [(resize, {"n": 1}), (resize, {"n": 2})],
        then=(done, {"note": "ok"}),
        finally_=done,
    )

    assert _drain(batch_queue, ["media"]) == ["resize", "resize", "done", "done"]
    record = dispatcher.batch_record(batch_id)
    assert record.state == "succeeded"
    then = batch_queue.get(record.callbacks[Callback.THEN])
    assert then is not None
    assert (then.job.queue, then.job.metadata[BATCH_KEY]) == ("media", batch_id)


def test_bad_batches_are_refused_before_anything_is_sent(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    with pytest.raises(InvalidJob, match="at least one job"):
        dispatcher.batch([])
    with pytest.raises(UnknownHandler):
        dispatcher.batch([(resize, {"n": 1}), ("nope", {})])
    with pytest.raises(InvalidJob, match="not in queue"):
        dispatcher.batch([dispatcher.build(resize, {"n": 1}, after=("missing",))])

    with pytest.raises(InvalidJob, match="a batch takes"):
        dispatcher.batch(["resize"])  # type: ignore[list-item]
    with pytest.raises(InvalidJob, match="then callback is"):
        dispatcher.batch([(resize, {"n": 1})], then=[(done, {}), (done, {})])
    with pytest.raises(InvalidJob, match="catch callback is"):
        dispatcher.batch([(resize, {"n": 1})], catch=(done, {}, "extra"))
    with pytest.raises(InvalidJob, match="allow_failures"):
        dispatcher.batch([(resize, {"n": 1})], allow_failures="yes")  # type: ignore[arg-type]

    assert batch_queue.stats("media").pending == 0
    assert batch_queue.batches("media") == []
    with pytest.raises(BatchNotFound, match="no batch"):
        dispatcher.batch_record("missing")


def test_build_takes_the_options_dispatch_takes(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue, clock: ManualClock
) -> None:
    later = dispatcher.build(resize, {"n": 1}, job_id="chosen", delay=60, concurrency=1)

    batch_id = dispatcher.batch([later, (resize, {"n": 2})])

    record = batch_queue.get("chosen")
    assert record is not None
    assert record.state is JobState.DELAYED
    assert record.run_at == clock.now() + timedelta(seconds=60)
    assert record.job.limit is not None
    assert record.job.limit.concurrency == 1
    assert dispatcher.batch_record(batch_id).progress.total == 2
    with pytest.raises(TypeError, match="delay="):
        dispatcher.build(resize, {"n": 1}, dealy=60)


def test_a_chain_step_may_be_a_batch(dispatcher: AnyDispatcher, batch_queue: BatchQueue) -> None:
    middle = dispatcher.build_batch([(resize, {"n": 1}), (resize, {"n": 2})], finally_=done)

    ids = dispatcher.chain([(done, {"note": "first"}), middle, (done, {"note": "last"})])

    assert ids[1] == middle.id
    ran = _drain(batch_queue, ["default"])
    assert ran == ["done", "resize", "resize", "done", "done"]
    last = batch_queue.get(ids[2])
    assert last is not None
    assert last.state is JobState.COMPLETED


def test_a_chain_with_a_batch_step_sent_again_with_its_chain_id_stores_nothing_new(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    def send() -> list[str]:
        middle = dispatcher.build_batch([(resize, {"n": 1}), (resize, {"n": 2})], then=done)
        return dispatcher.chain([(done, {"note": "first"}), middle], chain_id="album-3")

    ids = send()

    assert send() == ids == ["album-3.1", "album-3.2"]
    record = dispatcher.batch_record("album-3.2")
    assert record.progress.total == 2
    assert _drain(batch_queue, ["default"]) == ["done", "resize", "resize", "done"]
    then = batch_queue.get(record.callbacks[Callback.THEN])
    assert then is not None
    assert then.job.metadata[BATCH_KEY] == "album-3.2"


def test_a_chain_naming_a_batch_or_job_twice_is_refused_and_nothing_is_written(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    middle = dispatcher.build_batch([(resize, {"n": 1})])
    member = dispatcher.build(resize, {"n": 2})

    with pytest.raises(InvalidJob, match="used twice"):
        dispatcher.chain([middle, (done, {}), middle])
    with pytest.raises(InvalidJob, match="used twice"):
        dispatcher.chain([dispatcher.build_batch([member]), dispatcher.build_batch([member])])

    assert batch_queue.queues() == []
    assert batch_queue.batches("media") == []


def test_a_failed_batch_stops_its_chain(dispatcher: AnyDispatcher, batch_queue: BatchQueue) -> None:
    middle = dispatcher.build_batch([(resize, {"n": 1})], catch=done)

    ids = dispatcher.chain([middle, (done, {"note": "last"})])

    assert _drain(batch_queue, ["media"], fail="resize") == ["resize", "done"]
    last = batch_queue.get(ids[1])
    assert last is not None
    assert (last.state, last.reason) == (JobState.CANCELLED, "dependency failed")


def test_cancel_batch_through_the_dispatcher(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    batch_id = dispatcher.batch([(resize, {"n": 1})], then=done)

    record = dispatcher.cancel_batch(batch_id, reason="changed my mind")

    assert (record.state, record.reason) == ("cancelled", "changed my mind")
    assert dispatcher.batch_record(batch_id, queue="media") == record
    assert _drain(batch_queue, ["media"]) == []
    with pytest.raises(BatchNotFound):
        dispatcher.cancel_batch("missing")


def test_result_and_cancel_of_a_batch_id_say_it_is_a_batch(dispatcher: AnyDispatcher) -> None:
    middle = dispatcher.build_batch([(resize, {"n": 1})])
    ids = dispatcher.chain([(done, {}), middle])

    with pytest.raises(JobNotFound, match="is a batch, not a job: use batch_record"):
        dispatcher.result(ids[1], timeout=0)
    with pytest.raises(JobNotFound, match="is a batch, not a job: use cancel_batch"):
        dispatcher.cancel(ids[1])
    with pytest.raises(JobNotFound, match="check the id"):
        dispatcher.result("missing", timeout=0)


def test_a_dispatcher_without_a_batch_store_says_how_to_get_one(
    dispatchers: Dispatchers, clock: ManualClock
) -> None:
    keeps_none = attrs.evolve(QUEUE_BACKENDS["memory"], batches=False)
    dispatcher = dispatchers.over(keeps_none, MemoryQueue(clock), registry)

    with pytest.raises(ConfigurationError, match="batches="):
        dispatcher.batch([(resize, {"n": 1})])
    with pytest.raises(ConfigurationError, match="batches="):
        dispatcher.cancel_batch("any")


def test_batch_results_wait_for_every_job_and_answer_in_the_batchs_order(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    batch_id = dispatcher.batch([(resize, {"n": 3}), (resize, {"n": 1}), (resize, {"n": 2})])
    worker = threading.Thread(target=_drain, args=(batch_queue, ["media"]))
    worker.start()
    try:
        assert dispatcher.batch_results(batch_id, timeout=60) == [3, 1, 2]
    finally:
        worker.join()

    assert dispatcher.batch_results(batch_id, timeout=0) == [3, 1, 2]  # ended: at once


def test_batch_results_answer_the_jobs_that_ended_while_it_waited_for_another(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    fails = dispatcher.build(done, {"note": "x"}, queue="media")
    batch_id = dispatcher.batch([(resize, {"n": 1}), fails, (resize, {"n": 3})])
    running = batch_queue.claim(ClaimRequest(["media"], lease=LEASE, limit=3))

    def end_in_order() -> None:  # the last one ends last: the others between two wakes
        for lease in running:
            if lease.job_id == fails.id:
                batch_queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))
            else:
                batch_queue.complete(lease, lease.job.payload["n"])

    worker = threading.Thread(target=end_in_order)
    worker.start()
    try:
        first, failed, last = dispatcher.batch_results(batch_id, timeout=60, propagate=False)
    finally:
        worker.join()

    assert (first, last) == (1, 3)
    assert isinstance(failed, JobFailed)
    assert failed.job_id == fails.id


def test_batch_results_raise_the_first_failure_or_keep_it_in_its_place(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    fails = dispatcher.build(done, {"note": "x"}, queue="media")
    batch_id = dispatcher.batch([(resize, {"n": 1}), fails, (resize, {"n": 2})])
    _drain(batch_queue, ["media"], fail="done")

    with pytest.raises(JobFailed, match=fails.id):
        dispatcher.batch_results(batch_id, timeout=0)
    first, failed, last = dispatcher.batch_results(batch_id, timeout=0, propagate=False)
    assert (first, last) == (1, 2)
    assert isinstance(failed, JobFailed)
    assert failed.job_id == fails.id


def test_batch_results_time_out_naming_the_jobs_still_pending(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    jobs = [dispatcher.build(resize, {"n": n}) for n in range(3)]
    batch_id = dispatcher.batch(jobs)
    [lease] = batch_queue.claim(ClaimRequest(["media"], lease=LEASE, limit=1))
    batch_queue.complete(lease)
    pending = [job.id for job in jobs if job.id != lease.job_id]

    with pytest.raises(BatchTimeout) as caught:
        dispatcher.batch_results(batch_id, timeout=0)

    error = caught.value
    assert isinstance(error, ResultTimeout)
    assert (error.batch_id, error.left) == (batch_id, 2)
    assert error.pending == tuple((job_id, "ready") for job_id in pending)
    assert f"batch {batch_id!r} still has 2 job(s) pending" in str(error)
    with pytest.raises(BatchNotFound):
        dispatcher.batch_results("missing", timeout=0)


def test_a_batch_given_a_pending_callbacks_id_is_refused_naming_it(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    then = dispatcher.build(done, {"note": "ok"}, queue="media")
    first = dispatcher.batch([(resize, {"n": 1})], then=then)

    with pytest.raises(InvalidJob, match=rf"'{then.id}' is the then callback of batch '{first}'"):
        dispatcher.batch([(resize, {"n": 2})], batch_id=then.id)

    assert batch_queue.batches("media") == [dispatcher.batch_record(first)]
    assert _drain(batch_queue, ["media"]) == ["resize", "done"]


def test_a_job_dispatched_with_a_pending_callbacks_id_is_refused_naming_it(
    dispatcher: AnyDispatcher, batch_queue: BatchQueue
) -> None:
    then = dispatcher.build(done, {"note": "ok"}, queue="media")
    first = dispatcher.batch([(resize, {"n": 1})], then=then)
    taken = rf"'{then.id}' is the then callback of batch '{first}' in queue 'media'"

    with pytest.raises(InvalidJob, match=taken):
        dispatcher.dispatch(done, {"note": "mine"}, job_id=then.id, queue="media")

    assert _drain(batch_queue, ["media"]) == ["resize", "done"]
    record = batch_queue.get(then.id)
    assert record is not None
    assert (record.state, record.job.payload) == (JobState.COMPLETED, {"note": "ok"})
