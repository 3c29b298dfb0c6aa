"""Cancels and chains in a real prefork pool on the memory backend: a running handler is
interrupted with ``JobCancelled``, or killed after ``term_grace`` if it ignores it; a chain
hands each step's result to the next."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from foundry.adapters.clock import SystemClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.dispatcher import Dispatcher
from foundry.application.pool import Pool
from foundry.application.pool.config import PoolConfig
from foundry.application.registry import JobRegistry
from foundry.domain import JobCancelled, JobState, RetryPolicy

registry = JobRegistry()
PATIENT = RetryPolicy(max_attempts=5)


@registry.job(name="sleeps", retry=PATIENT, timeout=timedelta(seconds=60))
def sleeps() -> None:
    time.sleep(30)


@registry.job(name="ignores", retry=PATIENT, timeout=timedelta(seconds=60))
def ignores() -> None:
    try:
        time.sleep(30)
    except JobCancelled:
        time.sleep(30)


def _cancel_once_running(queue: MemoryQueue, job_id: str) -> threading.Thread:
    """Cancel ``job_id`` from another thread as soon as a child runs it."""

    def cancel() -> None:
        while (record := queue.get(job_id)) is None or record.state is not JobState.ACTIVE:
            time.sleep(0.01)
        queue.cancel(job_id, reason="user asked")

    thread = threading.Thread(target=cancel, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("name", ["sleeps", "ignores"])
def test_a_running_job_is_stopped_and_ends_cancelled(name: str) -> None:
    queue = MemoryQueue(SystemClock())
    job_id = Dispatcher(queue, registry, SystemClock()).dispatch(name)
    canceller = _cancel_once_running(queue, job_id)
    config = PoolConfig(
        concurrency=1,
        burst=True,
        idle_wait=timedelta(milliseconds=50),
        cancel_check=timedelta(milliseconds=100),
        term_grace=timedelta(milliseconds=300),
    )

    code = Pool(queue, registry, config, clock=SystemClock(), workers=queue).run()

    canceller.join(5)
    record = queue.get(job_id)
    assert record is not None
    assert (code, record.state, record.reason, record.attempts) == (
        0,
        JobState.CANCELLED,
        "user asked",
        1,
    )
    assert record.errors[-1].type == "foundry.domain.outcome_errors.JobCancelled"


@registry.job(name="first")
def first(n: int) -> int:
    return n + 1


@registry.job(name="then_double")
def then_double(previous: int | None = None) -> int:
    return (previous or 0) * 2


def test_a_chain_hands_each_steps_result_to_the_next() -> None:
    queue = MemoryQueue(SystemClock())
    dispatcher = Dispatcher(queue, registry, SystemClock())
    ids = dispatcher.chain(
        [(first, {"n": 4}), (then_double, {}), (then_double, {})], result_as="previous"
    )
    config = PoolConfig(concurrency=2, burst=True, idle_wait=timedelta(milliseconds=50))

    code = Pool(queue, registry, config, clock=SystemClock(), workers=queue).run()

    assert code == 0
    assert [dispatcher.result(job_id, timeout=0) for job_id in ids] == [5, 10, 20]
