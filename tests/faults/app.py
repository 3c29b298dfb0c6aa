"""The application the fault scenarios run: `foundry work --app tests.faults.app:registry`.

Its one handler writes what it does to the ledger named by ``FOUNDRY_FAULT_LEDGER`` (start,
ticks while it sleeps, end), so the checker can count starts and see overlapping runs.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

from foundry.application.context import current_job
from foundry.application.registry import JobRegistry
from foundry.domain import Fixed, PermanentFailure, RetryPolicy
from tests.faults.ledger import Ledger

registry = JobRegistry()

#: Every fault job may be started this often before it dies with "lease lost" / its error.
MAX_ATTEMPTS = 10

_ledger: Ledger | None = None


def ledger() -> Ledger:
    """This process's handle on the scenario's ledger."""
    global _ledger  # noqa: PLW0603 - one handle per process, opened on first use
    if _ledger is None:
        _ledger = Ledger.from_env()
    return _ledger


@registry.job(
    name="faults.work",
    retry=RetryPolicy(max_attempts=MAX_ATTEMPTS, backoff=Fixed(timedelta(milliseconds=100))),
    timeout=timedelta(seconds=60),
)
def work(id: str, ms: int = 0, tick_ms: int = 50, poison: str = "") -> str:
    """Record the start, sleep ``ms`` (ticking), then record the end; poison jobs misbehave."""
    book = ledger()
    context = current_job()
    attempt = context.attempt if context else None
    book.record("start", job=id, attempt=attempt, pid=os.getpid(), ppid=os.getppid())
    _poison(poison)
    deadline = time.monotonic() + ms / 1000
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, tick_ms / 1000))
        book.record("tick", job=id, pid=os.getpid())
    book.record("end", job=id, pid=os.getpid())
    return id


def _poison(kind: str) -> None:
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "exit":
        os._exit(3)
    elif kind == "permanent":
        raise PermanentFailure("poison: this job always fails")
