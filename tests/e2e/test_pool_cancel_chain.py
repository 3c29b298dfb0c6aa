"""Cancels, chains and progress in a real prefork pool on the memory backend: a running
handler is interrupted with ``JobCancelled``, or killed after ``term_grace`` if it ignores it;
a chain hands each step's result to the next; a handler's progress is stored while it runs."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from foundry.adapters.clock import SystemClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.context import current_job
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


@registry.job(name="reports")
def reports(path: str) -> str:
    context = current_job()
    assert context is not None
    context.progress(0.5, "half of it")
    while not os.path.exists(path):  # until the test has seen the progress stored
        time.sleep(0.01)
    return "done"


def test_a_handlers_progress_is_stored_while_it_runs(tmp_path: Path) -> None:
    queue = MemoryQueue(SystemClock())
    seen = tmp_path / "seen"
    job_id = Dispatcher(queue, registry, SystemClock()).dispatch(reports, {"path": str(seen)})

    def watch() -> None:
        while (record := queue.get(job_id)) is None or record.progress is None:
            time.sleep(0.01)
        seen.write_text(str(record.progress))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    config = PoolConfig(
        concurrency=1,
        burst=True,
        idle_wait=timedelta(milliseconds=50),
        cancel_check=timedelta(milliseconds=100),
    )

    code = Pool(queue, registry, config, clock=SystemClock(), workers=queue).run()

    watcher.join(5)
    assert (code, seen.read_text()) == (0, "50% (half of it)")
    record = queue.get(job_id)
    assert record is not None
    assert (record.state, record.result) == (JobState.COMPLETED, "done")
