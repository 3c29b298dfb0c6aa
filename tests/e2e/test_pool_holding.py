"""A real pool whose busy child holds its next job queued (one child, one job held ahead:
the parent sends it the next job as soon as it has the first): a child killed holding one
gives it back unstarted, and a queued job's time limits count from its real start."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from foundry.adapters.clock import SystemClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.dispatcher import Dispatcher
from foundry.application.pool import Pool
from foundry.application.pool.child import child_main
from foundry.application.pool.config import PoolConfig
from foundry.application.pool.watchdog import new_fence, set_start_by, started
from foundry.application.pool.wire import (
    READY,
    STOP,
    decode_reply,
    decode_skipped,
    encode_task,
    framed,
    write_all,
)
from foundry.application.registry import JobRegistry
from foundry.domain import Job, JobState, RetryPolicy
from foundry.ports import Lease

registry = JobRegistry()
ONCE = RetryPolicy(max_attempts=1)


@registry.job(name="crash", retry=ONCE)
def crash(seconds: float) -> None:
    time.sleep(seconds)  # long enough for the parent to have sent the next job
    os.kill(os.getpid(), signal.SIGKILL)


@registry.job(name="crash_async", retry=ONCE)
async def crash_async(seconds: float) -> None:
    await asyncio.sleep(seconds)
    os.kill(os.getpid(), signal.SIGKILL)


@registry.job(name="logged", retry=RetryPolicy(max_attempts=3))
def logged(path: str) -> int:
    with Path(path).open("a") as out:
        out.write(f"{os.getpid()}\n")
    return os.getpid()


@registry.job(name="logged_async", retry=RetryPolicy(max_attempts=3))
async def logged_async(path: str) -> int:
    await asyncio.sleep(0)
    with Path(path).open("a") as out:
        out.write(f"{os.getpid()}\n")
    return os.getpid()


@registry.job(name="nap", retry=ONCE, timeout=timedelta(seconds=30))
def nap(seconds: float) -> None:
    time.sleep(seconds)


@registry.job(name="brief", retry=ONCE, timeout=timedelta(seconds=1))
def brief(seconds: float) -> None:
    time.sleep(seconds)


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue(SystemClock())


@pytest.fixture
def dispatcher(queue: MemoryQueue) -> Dispatcher:
    return Dispatcher(queue, registry, SystemClock())


def run(queue: MemoryQueue, **options: Any) -> int:
    config = PoolConfig(
        burst=True, idle_wait=timedelta(milliseconds=50), concurrency=1, prefetch=1, **options
    )
    return Pool(queue, registry, config, clock=SystemClock(), workers=queue).run()


@pytest.mark.parametrize(
    ("crashing", "next_one"), [("crash", "logged"), ("crash_async", "logged_async")]
)
def test_a_job_queued_in_a_killed_child_runs_once_elsewhere_with_one_attempt(
    queue: MemoryQueue, dispatcher: Dispatcher, tmp_path: Path, crashing: str, next_one: str
) -> None:
    runs = tmp_path / "runs"
    killer = dispatcher.dispatch(crashing, {"seconds": 0.3})
    queued = dispatcher.dispatch(next_one, {"path": str(runs)})

    assert run(queue) == 0

    died = queue.get(killer)
    assert died is not None
    assert (died.state, died.errors[-1].signal) == (JobState.DEAD, 9)
    dead_pid = int(str(died.errors[-1].worker).rsplit(":", 1)[1])
    record = queue.get(queued)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.COMPLETED, 1)
    assert runs.read_text().split() == [str(record.result)]  # it ran once
    assert record.result != dead_pid  # in the child that replaced the killed one


def test_a_queued_jobs_hard_time_limit_counts_from_its_start_not_from_its_send(
    queue: MemoryQueue, dispatcher: Dispatcher
) -> None:
    first = dispatcher.dispatch("nap", {"seconds": 1.5})
    queued = dispatcher.dispatch("brief", {"seconds": 0.2})  # sent 1.5 s before it starts

    assert run(queue) == 0

    assert [queue.get(job_id).state for job_id in (first, queued)] == [  # type: ignore[union-attr]
        JobState.COMPLETED,
        JobState.COMPLETED,
    ]


def start_child(max_rss: int | None) -> tuple[Any, Any, Any]:
    """A real pool child on a fence of its own: the process, the parent's end of its pipe,
    the fence."""
    context = multiprocessing.get_context("fork")
    parent_end, child_end = context.Pipe(duplex=True)
    fence = new_fence()
    child = context.Process(
        target=child_main,
        args=(child_end,),
        kwargs={
            "registry": registry,
            "parent_pid": os.getpid(),
            "inherited": [parent_end.fileno()],
            "child_init": None,
            "max_rss": max_rss,
            "fence": fence,
        },
    )
    child.start()
    child_end.close()
    return child, parent_end, fence


def test_a_child_skips_a_task_whose_start_by_time_has_passed_and_runs_the_next() -> None:
    child, parent_end, fence = start_child(max_rss=None)
    now = SystemClock().now()
    late, due = (Lease(Job("nap", payload={"seconds": 0}), token, 1, now) for token in "ab")
    try:
        assert parent_end.recv_bytes() == READY
        set_start_by(fence, 0, time.monotonic() - 1)  # its lease is about to be fenced
        set_start_by(fence, 1, time.monotonic() + 60)
        write_all(parent_end.fileno(), framed(encode_task(late)) + framed(encode_task(due)))

        skipped = decode_skipped(parent_end.recv_bytes())
        reply = decode_reply(parent_end.recv_bytes())
    finally:
        parent_end.send_bytes(STOP)
        child.join(10)

    assert skipped == (0, "a")
    assert (reply.ok, reply.token, reply.pid) == (True, "b", child.pid)
    assert started(fence) == 2  # task 1 started (task 0 did not)
    assert reply.ended is not None
    assert reply.ended <= time.monotonic()


def test_a_child_over_its_memory_limit_skips_the_task_it_holds_queued() -> None:
    child, parent_end, fence = start_child(max_rss=1)  # any process is over it
    now = SystemClock().now()
    first, held = (Lease(Job("nap", payload={"seconds": 0}), token, 1, now) for token in "ab")
    try:
        assert parent_end.recv_bytes() == READY
        write_all(parent_end.fileno(), framed(encode_task(first)) + framed(encode_task(held)))

        reply = decode_reply(parent_end.recv_bytes())
        skipped = decode_skipped(parent_end.recv_bytes())
    finally:
        parent_end.send_bytes(STOP)
        child.join(10)

    assert (reply.ok, reply.token, reply.rss > 1) == (True, "a", True)
    assert (skipped, started(fence)) == ((1, "b"), 1)
