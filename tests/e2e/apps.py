"""Apps the end-to-end tests hand to ``foundry work --app``.

Handlers append one line per run to the file named by ``FOUNDRY_E2E_LEDGER``, so a test can
check that every job ran exactly once, whichever process ran it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from foundry.application.context import current_job
from foundry.application.dispatcher import Dispatcher
from foundry.application.registry import JobRegistry
from foundry.domain import Fixed, RetryPolicy

QUEUE = "e2e"
LEDGER = "FOUNDRY_E2E_LEDGER"
JOBS = "FOUNDRY_E2E_JOBS"

registry = JobRegistry()


def _record(line: str) -> None:
    with open(os.environ[LEDGER], "a", encoding="utf-8") as ledger:
        ledger.write(line + "\n")


@registry.job(name="e2e.add", queue=QUEUE)
def add(a: int, b: int) -> int:
    """Record and return a sum."""
    _record(f"add {a} {b}")
    return a + b


@registry.job(name="e2e.flaky", queue=QUEUE, retry=RetryPolicy(max_attempts=3, backoff=Fixed()))
def flaky(key: str) -> None:
    """Fail on the first run of ``key``, succeed on the next."""
    with open(os.environ[LEDGER], encoding="utf-8") as ledger:
        seen = any(line == f"flaky {key}\n" for line in ledger)
    _record(f"flaky {key}")
    if not seen:
        raise ConnectionError(f"first run of {key} fails")


@registry.job(name="e2e.unreadable", queue=QUEUE, retry=RetryPolicy(max_attempts=1))
def unreadable() -> None:
    """Report progress and fail naming a file whose name is not UTF-8 (``os.fsdecode``
    escapes its bytes as lone surrogates)."""
    name = os.fsdecode(b"report-\xff.csv")
    current_job().progress(0.5, name)  # type: ignore[union-attr]
    raise FileNotFoundError(f"no such file: {name}")


@registry.job(name="e2e.nap", queue=QUEUE, retry=RetryPolicy(max_attempts=1))
def nap(seconds: float) -> str:
    """Record its start, sleep ``seconds``, record its end."""
    _record("nap started")
    time.sleep(seconds)
    _record("nap ended")
    return "rested"


def with_jobs(container: Any) -> JobRegistry:
    """The registry, after dispatching ``FOUNDRY_E2E_JOBS`` sums into the container's queue.

    This is how an app fills a memory queue, which lives only in the worker's process.
    """
    dispatcher = Dispatcher(container.queue(), registry, container.clock())
    count = int(os.environ[JOBS])
    dispatcher.dispatch_many([(add, {"a": n, "b": 1}) for n in range(count)])
    return registry


def with_cache(container: Any) -> JobRegistry:
    """A registry whose one handler counts its runs in the container's cache.

    The handler calls ``container.cache()`` inside the child, so it exercises the pool's
    ``child_init``: each child builds its own cache client after the fork.
    """

    counting = JobRegistry()

    @counting.job(name="e2e.count", queue=QUEUE)
    def count() -> int:
        return int(container.cache().increment("runs"))

    return counting
