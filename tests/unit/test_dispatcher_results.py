"""The dispatcher's result() on the memory queue (cancel and dependencies through both
dispatchers on every backend: tests/contract/test_dispatch_control.py)."""

from datetime import timedelta

import pytest

from foundry.adapters.clock import ManualClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.domain import (
    Dead,
    ErrorInfo,
    JobFailed,
    JobNotFound,
    ResultTimeout,
)
from foundry.ports import ClaimRequest

registry = JobRegistry()


@registry.job(name="resize", queue="images", priority=2)
def resize(width: int) -> int:
    return width


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def queue(clock: ManualClock) -> MemoryQueue:
    return MemoryQueue(clock)


@pytest.fixture
def dispatcher(queue: MemoryQueue, clock: ManualClock) -> Dispatcher:
    return Dispatcher(queue, registry, clock)


def _run(queue: MemoryQueue, result: object = None, *, dead: str | None = None) -> None:
    [lease] = queue.claim(ClaimRequest(["images"], lease=timedelta(seconds=30)))
    if dead is None:
        queue.complete(lease, result)
    else:
        queue.fail(lease, ErrorInfo("ValueError", "bad width"), Dead(dead))


def test_result_returns_what_the_handler_returned(
    dispatcher: Dispatcher, queue: MemoryQueue
) -> None:
    job_id = dispatcher.dispatch(resize, {"width": 10})
    _run(queue, {"width": 10})

    assert dispatcher.result(job_id, timeout=0) == {"width": 10}
    assert dispatcher.result(job_id, timeout=timedelta(seconds=1), queue="images") == {"width": 10}
    assert dispatcher.result(job_id) == {"width": 10}


def test_result_of_a_dead_job_raises_its_reason_and_history(
    dispatcher: Dispatcher, queue: MemoryQueue
) -> None:
    job_id = dispatcher.dispatch(resize, {"width": 10})
    _run(queue, dead="permanent failure")

    with pytest.raises(JobFailed, match=r"permanent failure.*ValueError: bad width") as caught:
        dispatcher.result(job_id, timeout=1)

    assert caught.value.reason == "permanent failure"
    assert [error.message for error in caught.value.errors] == ["bad width"]


def test_result_of_a_job_not_done_in_time_raises_a_timeout(dispatcher: Dispatcher) -> None:
    job_id = dispatcher.dispatch(resize, {"width": 10})

    with pytest.raises(ResultTimeout, match=r"still ready after waiting 0\.01 s") as caught:
        dispatcher.result(job_id, timeout=0.01)

    assert isinstance(caught.value, TimeoutError)


def test_result_of_an_unknown_job_raises_not_found(dispatcher: Dispatcher) -> None:
    with pytest.raises(JobNotFound, match="no job 'nope'"):
        dispatcher.result("nope", timeout=1)


@pytest.mark.parametrize("timeout", [-1, float("nan"), timedelta(seconds=-1)])
def test_result_refuses_a_timeout_that_is_not_a_duration(
    dispatcher: Dispatcher, timeout: float | timedelta
) -> None:
    with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0"):
        dispatcher.result("any", timeout=timeout)
