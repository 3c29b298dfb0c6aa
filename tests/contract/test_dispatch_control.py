"""Chains, dependencies and cancel through the public dispatchers: the sync ``Dispatcher`` and
the ``AsyncDispatcher`` keep the same promises, on every queue backend."""

from __future__ import annotations

from typing import Any

import pytest

from foundry.application.chains import RESULT_AS
from foundry.application.registry import JobRegistry
from foundry.domain import (
    AfterFailure,
    Dead,
    ErrorInfo,
    InvalidJob,
    JobCancelled,
    JobNotFound,
    JobState,
    UniqueSpec,
    UnknownHandler,
)
from foundry.ports import ClaimRequest
from tests.backends import LEASE, Queue, QueueBackend
from tests.dispatch_support import AnyDispatcher, Dispatchers

registry = JobRegistry()


@registry.job(name="fetch", queue="etl")
def fetch(url: str) -> str:
    return url


@registry.job(name="parse", queue="other")
def parse(text: str | None = None, strict: bool = False) -> int:
    return len(text or "")


@registry.job(name="report", queue="etl", unique=UniqueSpec("report-{account}"))
def report(account: int) -> int:
    return account


@pytest.fixture
def dispatcher(
    dispatchers: Dispatchers, queue_backend: QueueBackend, queue: Queue
) -> AnyDispatcher:
    """Each dispatcher in turn, over the current backend's ``queue``."""
    return dispatchers.over(queue_backend, queue, registry)


def _claim(queue: Queue) -> list[str]:
    return [lease.job_id for lease in queue.claim(ClaimRequest(["etl"], lease=LEASE, limit=5))]


def test_a_chain_runs_its_steps_one_after_another_in_the_first_steps_queue(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    ids = dispatcher.chain([(fetch, {"url": "u"}), (parse, {}), (parse, {"strict": True})])

    order = []
    while leases := queue.claim(ClaimRequest(["etl"], lease=LEASE, limit=5)):
        assert len(leases) == 1
        order.append(leases[0].job_id)
        queue.complete(leases[0])

    assert order == ids
    assert [queue.get(job_id).job.queue for job_id in ids] == ["etl"] * 3  # type: ignore[union-attr]


def test_a_dead_step_cancels_the_rest_with_the_reason(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    _, second, third = dispatcher.chain([(fetch, {"url": "u"}), (parse, {}), (parse, {})])
    [lease] = queue.claim(ClaimRequest(["etl"], lease=LEASE))

    queue.fail(lease, ErrorInfo("Boom", "x"), Dead("gave up"))

    for job_id in (second, third):
        record = queue.get(job_id)
        assert record is not None
        assert (record.state, record.reason) == (JobState.CANCELLED, "dependency failed")
    assert _claim(queue) == []


def test_result_as_marks_the_later_steps_and_fills_a_placeholder(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    first, second = dispatcher.chain([(fetch, {"url": "u"}), (parse, {})], result_as="text")

    record = queue.get(second)
    assert record is not None
    assert (record.job.payload, record.job.metadata[RESULT_AS]) == ({"text": None}, "text")
    first_record = queue.get(first)
    assert first_record is not None
    assert RESULT_AS not in first_record.job.metadata


def test_a_chain_sent_again_with_its_chain_id_stores_nothing_new(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    ids = dispatcher.chain([(fetch, {"url": "u"}), (parse, {})], chain_id="order-7")

    again = dispatcher.chain([(fetch, {"url": "u"}), (parse, {})], chain_id="order-7")

    assert ids == again == ["order-7.1", "order-7.2"]
    [first] = queue.claim(ClaimRequest(["etl"], lease=LEASE, limit=5))
    queue.complete(first)
    assert (first.job_id, _claim(queue), _claim(queue)) == ("order-7.1", ["order-7.2"], [])


def test_a_chain_step_may_be_a_job_from_build(dispatcher: AnyDispatcher, queue: Queue) -> None:
    built = dispatcher.build(parse, {"strict": True}, priority=5)

    first, second = dispatcher.chain([(fetch, {"url": "u"}), built])

    assert second == built.id
    record = queue.get(second)
    assert record is not None
    assert (record.job.queue, record.job.after, record.job.priority) == ("etl", (first,), 5)
    assert record.job.after_failure is AfterFailure.CANCEL
    assert _claim(queue) == [first]


def test_a_job_from_build_given_as_two_steps_is_refused_naming_both(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    built = dispatcher.build(parse, {})

    with pytest.raises(InvalidJob, match="step 3 of the chain is the job of step 2"):
        dispatcher.chain([(fetch, {"url": "u"}), built, built])

    assert queue.queues() == []


def test_result_as_is_refused_for_a_later_step_from_build(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    built = dispatcher.build(parse, {})

    with pytest.raises(InvalidJob, match=r"give that step as \('parse', payload\)"):
        dispatcher.chain([(fetch, {"url": "u"}), built], result_as="text")

    assert queue.queues() == []


@pytest.mark.parametrize(
    ("steps", "options", "error"),
    [
        ([], {}, InvalidJob),
        ([(fetch, {"url": "u"}), ("nope", {})], {}, UnknownHandler),
        ([(fetch, {"url": "u"}), (parse, {"bogus": 1})], {}, InvalidJob),
        ([(fetch, {"url": "u"}), (parse, {})], {"result_as": "not a name"}, InvalidJob),
        (["fetch", "parse"], {}, InvalidJob),  # names, not (handler, payload) pairs
        ([(fetch, {"url": "u"}), parse], {}, InvalidJob),
        ([(fetch, {"url": "u"}), (parse, {"text": "mine"})], {"result_as": "text"}, InvalidJob),
        ([(report, {"account": 1}), (parse, {})], {}, InvalidJob),  # a duplicate never ends
        ([(fetch, {"url": "u"}), (report, {"account": 1})], {}, InvalidJob),
        ([(fetch, {"url": "u"}), (parse, {})], {"result_as": 5}, InvalidJob),
        ([(fetch, {"url": "u"}), (parse, {})], {"chain_id": "no spaces"}, InvalidJob),
        ([(fetch, {"url": "u"}), (parse, {})], {"chain_id": "x" * 63}, InvalidJob),
    ],
)
def test_a_bad_chain_is_refused_and_nothing_is_written(
    dispatcher: AnyDispatcher,
    queue: Queue,
    steps: list[Any],
    options: dict[str, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        dispatcher.chain(steps, **options)

    assert queue.queues() == []


def test_cancel_ends_a_pending_job_and_result_then_raises_cancelled(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    job_id = dispatcher.dispatch(fetch, {"url": "u"})

    state = dispatcher.cancel(job_id, reason="not needed")

    assert state is JobState.CANCELLED
    assert _claim(queue) == []
    with pytest.raises(JobCancelled, match="cancelled \\(not needed\\)"):
        dispatcher.result(job_id, timeout=1)


def test_a_cancel_without_a_reason_reads_plainly(dispatcher: AnyDispatcher) -> None:
    job_id = dispatcher.dispatch(fetch, {"url": "u"})
    dispatcher.cancel(job_id)

    with pytest.raises(JobCancelled, match=r"was cancelled; it has no result$"):
        dispatcher.result(job_id, timeout=1)


def test_cancel_of_a_running_job_leaves_it_active_for_its_worker_to_stop(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    job_id = dispatcher.dispatch(fetch, {"url": "u"})
    [lease] = queue.claim(ClaimRequest(["etl"], lease=LEASE))

    state = dispatcher.cancel(job_id, queue="etl")

    assert state is JobState.ACTIVE
    assert lease.job_id == job_id


@pytest.mark.parametrize("timeout", ["5", float("nan"), -1, [1]])
def test_a_result_timeout_that_is_not_seconds_is_refused(
    dispatcher: AnyDispatcher, timeout: Any
) -> None:
    job_id = dispatcher.dispatch(fetch, {"url": "u"})

    with pytest.raises(ValueError, match="a number of seconds >= 0, a timedelta or None"):
        dispatcher.result(job_id, timeout=timeout)


def test_cancel_of_an_unknown_job_raises_not_found(dispatcher: AnyDispatcher) -> None:
    with pytest.raises(JobNotFound):
        dispatcher.cancel("nope")
    with pytest.raises(JobNotFound):
        dispatcher.cancel("nope", queue="etl")


@pytest.mark.parametrize("given", [["an-id"], None, 5, b"an-id"])
def test_an_id_that_is_not_a_string_is_a_type_error_naming_what_to_pass(
    dispatcher: AnyDispatcher, queue: Queue, given: Any
) -> None:
    job_id = dispatcher.dispatch(fetch, {"url": "u"})
    batch_id = dispatcher.batch([(fetch, {"url": "v"})])

    for call in (dispatcher.cancel, dispatcher.result):
        with pytest.raises(TypeError, match="expected the id string that dispatch returned"):
            call([job_id] if given == ["an-id"] else given)
    for call in (dispatcher.batch_record, dispatcher.cancel_batch):
        with pytest.raises(TypeError, match="expected the id string that batch returned"):
            call([batch_id] if given == ["an-id"] else given)

    assert len(_claim(queue)) == 2  # nothing was cancelled


def test_dispatch_after_makes_the_job_wait_for_the_others(
    dispatcher: AnyDispatcher, queue: Queue
) -> None:
    first = dispatcher.dispatch(fetch, {"url": "a"})

    second = dispatcher.dispatch(fetch, {"url": "b"}, after=[first], after_failure="run")

    record = queue.get(second)
    assert record is not None
    assert (record.state, record.job.after, record.job.after_failure) == (
        JobState.WAITING,
        (first,),
        AfterFailure.RUN,
    )
    queue.complete(queue.claim(ClaimRequest(["etl"], lease=LEASE))[0])
    assert _claim(queue) == [second]


def test_dispatch_after_an_unknown_job_is_refused(dispatcher: AnyDispatcher, queue: Queue) -> None:
    with pytest.raises(InvalidJob, match="job 'nope' is not in queue 'etl'"):
        dispatcher.dispatch(fetch, {"url": "b"}, after=["nope"])

    assert queue.stats("etl").pending == 0
