"""Cancelling a running ``async def`` handler in a real prefork pool: its task is cancelled on
the child's loop (the handler sees ``CancelledError`` and may clean up), the job ends
cancelled, and the same child's loop serves the next job."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

from foundry.adapters.clock import SystemClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.dispatcher import Dispatcher
from foundry.application.pool import Pool
from foundry.application.pool.config import PoolConfig
from foundry.application.registry import JobRegistry
from foundry.domain import JobState, RetryPolicy

registry = JobRegistry()


@registry.job(name="waits", retry=RetryPolicy(max_attempts=5), timeout=timedelta(seconds=60))
async def waits(marker: str) -> None:
    Path(marker + ".started").touch()
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        Path(marker).write_text(str(os.getpid()))
        raise


@registry.job(name="pid")
async def pid() -> int:
    await asyncio.sleep(0)
    return os.getpid()


def test_a_cancelled_async_handler_sees_the_cancellation_and_its_child_goes_on(
    tmp_path: Path,
) -> None:
    queue = MemoryQueue(SystemClock())
    dispatcher = Dispatcher(queue, registry, SystemClock())
    marker = tmp_path / "cancelled"
    job_id = dispatcher.dispatch(waits, {"marker": str(marker)})
    after = dispatcher.dispatch(pid, {}, delay=timedelta(milliseconds=300))

    def cancel_once_running() -> None:
        while not Path(f"{marker}.started").exists():  # the handler runs, not just its job
            time.sleep(0.01)
        queue.cancel(job_id, reason="user asked")

    canceller = threading.Thread(target=cancel_once_running, daemon=True)
    canceller.start()
    config = PoolConfig(
        concurrency=1,
        burst=True,
        idle_wait=timedelta(milliseconds=50),
        cancel_check=timedelta(milliseconds=100),
        # The child must stop the task and reply before term_grace runs out, or it is killed
        # (and the next job runs in a new child): generous, for a loaded machine.
        term_grace=timedelta(seconds=10),
    )

    code = Pool(queue, registry, config, clock=SystemClock(), workers=queue).run()

    canceller.join(5)
    record, next_one = queue.get(job_id), queue.get(after)
    assert record is not None
    assert next_one is not None
    assert (code, record.state, record.reason) == (0, JobState.CANCELLED, "user asked")
    assert record.errors[-1].type == "foundry.domain.outcome_errors.JobCancelled"
    assert marker.read_text() == str(next_one.result)  # cancelled in, then served by, one child
