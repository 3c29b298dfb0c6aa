"""Chains through the dispatcher on the memory queue: steps run in order, a failed step
cancels the rest, bad chains are refused before anything is written."""

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.chains import RESULT_AS
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.domain import Dead, ErrorInfo, InvalidJob, JobState, UnknownHandler
from foundry.ports import ClaimRequest

registry = JobRegistry()
LEASE = timedelta(seconds=30)


@registry.job(name="fetch", queue="etl")
def fetch(url: str) -> str:
    return url


@registry.job(name="parse", queue="other")
def parse(text: str | None = None, strict: bool = False) -> int:
    return len(text or "")


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue(ManualClock())


@pytest.fixture
def dispatcher(queue: MemoryQueue) -> Dispatcher:
    return Dispatcher(queue, registry, ManualClock())


def _claim(queue: MemoryQueue) -> list[str]:
    return [lease.job_id for lease in queue.claim(ClaimRequest(["etl"], lease=LEASE, limit=5))]


def test_a_chain_runs_its_steps_one_after_another_in_the_first_steps_queue(
    dispatcher: Dispatcher, queue: MemoryQueue
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
    dispatcher: Dispatcher, queue: MemoryQueue
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
    dispatcher: Dispatcher, queue: MemoryQueue
) -> None:
    first, second = dispatcher.chain([(fetch, {"url": "u"}), (parse, {})], result_as="text")

    record = queue.get(second)
    assert record is not None
    assert (record.job.payload, record.job.metadata[RESULT_AS]) == ({"text": None}, "text")
    first_record = queue.get(first)
    assert first_record is not None
    assert RESULT_AS not in first_record.job.metadata


@pytest.mark.parametrize(
    ("steps", "options", "error"),
    [
        ([], {}, InvalidJob),
        ([(fetch, {"url": "u"}), ("nope", {})], {}, UnknownHandler),
        ([(fetch, {"url": "u"}), (parse, {"bogus": 1})], {}, InvalidJob),
        ([(fetch, {"url": "u"}), (parse, {})], {"result_as": "not a name"}, InvalidJob),
    ],
)
def test_a_bad_chain_is_refused_and_nothing_is_written(
    dispatcher: Dispatcher, queue: MemoryQueue, steps: list, options: dict, error: type
) -> None:
    with pytest.raises(error):
        dispatcher.chain(steps, **options)

    assert queue.queues() == []
