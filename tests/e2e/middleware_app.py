"""An app whose middleware writes every hook it runs to a ledger, for ``foundry work --app``.

Each line is ``<who> <hook> <detail> <pid>``: the test reads which process ran which hook,
in which order, around which job.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from foundry import (
    Dispatcher,
    Job,
    JobContext,
    JobOutcome,
    JobRegistry,
    Lease,
    Middleware,
    Outcome,
    PermanentFailure,
    RetryPolicy,
    current_job,
)
from foundry.contrib.capture import ErrorCapture
from foundry.contrib.timing import TimingMiddleware
from tests.e2e.apps import LEDGER

QUEUE = "mw"


def record(line: str) -> None:
    """Append ``line`` and this process's pid to the ledger."""
    with open(os.environ[LEDGER], "a", encoding="utf-8") as ledger:
        ledger.write(f"{line} {os.getpid()}\n")


class Recorder(Middleware):
    """Records each hook it is called for, under its name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def on_dispatch(self, job: Job) -> Mapping[str, str]:
        return {f"seen-by-{self.name}": job.name}

    def after_fork(self) -> None:
        record(f"{self.name} after_fork -")

    def before_exit(self) -> None:
        record(f"{self.name} before_exit -")

    def before_job(self, job: JobContext) -> None:
        record(f"{self.name} before_job {job.name}")

    def on_error(self, job: JobContext, error: BaseException) -> None:
        record(f"{self.name} on_error {type(error).__name__}")

    def after_job(self, job: JobContext, outcome: JobOutcome) -> None:
        result = "ok" if outcome.ok else type(outcome.error).__name__
        record(f"{self.name} after_job {job.name}:{result}")

    def job_started(self, lease: Lease, child_pid: int, started_at: datetime) -> None:
        record(f"{self.name} job_started {lease.job.name}")

    def job_finished(self, lease: Lease, outcome: Outcome, runtime_s: float) -> None:
        record(f"{self.name} job_finished {lease.job.name}:{outcome.kind}")


class Gate(Middleware):
    """Refuses to run ``mw.refused``: its ``before_job`` raises ``PermanentFailure``."""

    def before_job(self, job: JobContext) -> None:
        if job.name == "mw.refused":
            raise PermanentFailure("refused by the gate middleware")


def to_ledger(error: BaseException, tags: Mapping[str, str]) -> None:
    """The fake error sink: what a Sentry client would receive."""
    record(f"sink captured {type(error).__name__}:{tags['job_name']}:{tags['attempt']}")


registry = JobRegistry()
registry.use(ErrorCapture(to_ledger))
registry.use(TimingMiddleware())
registry.use(Recorder("outer"))
registry.use(Recorder("inner"))
registry.use(Gate())


@registry.job(name="mw.echo", queue=QUEUE)
def echo() -> None:
    """Record the metadata the producer's hooks added."""
    job = current_job()
    assert job is not None
    record(f"handler echo {job.metadata.get('seen-by-outer')}:{job.metadata.get('seen-by-inner')}")


@registry.job(name="mw.boom", queue=QUEUE, retry=RetryPolicy(max_attempts=1))
def boom() -> None:
    """Fail."""
    record("handler boom -")
    raise ValueError("boom")


@registry.job(name="mw.refused", queue=QUEUE)
def refused() -> None:
    """Never runs: the gate refuses it."""
    record("handler refused -")


@registry.job(name="mw.killed", queue=QUEUE, retry=RetryPolicy(max_attempts=1))
def killed() -> None:
    """Kill its own worker process, as the kernel's out-of-memory killer would."""
    record("handler killed -")
    os.kill(os.getpid(), signal.SIGKILL)


def with_a_killed_job(container: Any) -> JobRegistry:
    """The registry, after dispatching one ``mw.killed`` job into the memory queue."""
    Dispatcher(container.queue(), registry, container.clock()).dispatch(killed)
    return registry


def with_jobs(container: Any) -> JobRegistry:
    """The registry, after dispatching one job of each handler, in order, into the memory
    queue through a dispatcher (so the producer hooks run)."""
    dispatcher = Dispatcher(container.queue(), registry, container.clock())
    for handler in (echo, boom, refused):
        dispatcher.dispatch(handler)
    return registry
