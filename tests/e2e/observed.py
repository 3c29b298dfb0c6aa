"""The app the metrics and dashboard tests run in ``foundry work``: jobs that complete, fail
once then complete, always fail (and die), or wait for a while."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from foundry.application.context import current_job
from foundry.application.registry import JobRegistry
from foundry.domain import Fixed, RetryPolicy

QUEUE = "observed"
SOON = RetryPolicy(max_attempts=2, backoff=Fixed(timedelta(milliseconds=50)))

registry = JobRegistry()


@registry.job(name="obs.ok", queue=QUEUE)
def ok(n: int = 0) -> int:
    """Complete at once."""
    return n


@registry.job(name="obs.flaky", queue=QUEUE, retry=SOON)
def flaky() -> str:
    """Fail on the first attempt, complete on the second."""
    context = current_job()
    if context is not None and context.attempt == 1:
        raise ConnectionError("the first attempt fails")
    return "second time lucky"


@registry.job(name="obs.doomed", queue=QUEUE, retry=SOON)
def doomed(note: str = "") -> None:
    """Fail every attempt: dies after the second."""
    raise ValueError(f"doomed: {note}")


@registry.job(name="obs.slow", queue=QUEUE)
def slow(seconds: float = 1.0) -> None:
    """Run for ``seconds``."""
    time.sleep(seconds)


@registry.job(name="obs.gated", queue=QUEUE, retry=RetryPolicy(max_attempts=1))
def gated(marker: str) -> str:
    """Fail (for good: one attempt) until the file ``marker`` exists."""
    if not os.path.exists(marker):
        raise RuntimeError(f"the gate {marker} is closed")
    return "passed the gate"
