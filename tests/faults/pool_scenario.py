"""Real pools on the memory backend for the fault tests: handlers that misbehave on cue, a
producer that writes the ledger, and the end check.

Handlers record ``start``/``end`` in the ledger (``FOUNDRY_FAULT_LEDGER``) and misbehave only
on the attempts their payload names, so every scenario is deterministic given its seed.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from foundry.adapters.clock import SystemClock
from foundry.adapters.memory import MemoryQueue
from foundry.application.context import current_job
from foundry.application.pool import Pool
from foundry.application.pool.config import PoolConfig
from foundry.application.registry import JobRegistry
from foundry.domain import Fixed, Job, RetryPolicy
from foundry.ports import QueuePort
from tests.faults.checker import Expectations, Report, check
from tests.faults.ledger import LEDGER_ENV, Ledger

registry = JobRegistry()
_hoard: list[bytearray] = []
_loop_runs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, int] = weakref.WeakKeyDictionary()


def _begin() -> tuple[Ledger, str, int]:
    """Record the start of this run; the ledger, the job id and the attempt number."""
    ledger = Ledger.from_env()
    context = current_job()
    assert context is not None
    ledger.record("start", job=context.job_id, pid=os.getpid(), ppid=os.getppid())
    return ledger, context.job_id, context.attempt


@registry.job(name="work")
def work(
    n: int = 0,
    seconds: float = 0.0,
    kill_on: Sequence[int] = (),
    stop_on: Sequence[int] = (),
    **_: Any,
) -> int:
    """Sleep ``seconds``; on an attempt listed in ``kill_on`` SIGKILL, in ``stop_on`` SIGSTOP
    this very process after recording the start."""
    ledger, job_id, run = _begin()
    if run in kill_on:
        os.kill(os.getpid(), signal.SIGKILL)
    if run in stop_on:
        os.kill(os.getpid(), signal.SIGSTOP)
    _keep_busy(ledger, job_id, seconds)
    ledger.record("end", job=job_id, pid=os.getpid())
    return n


def _keep_busy(ledger: Ledger, job_id: str, seconds: float) -> None:
    """Sleep ``seconds``, recording a tick every 0.1 s (the overlap check reads them)."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))
        ledger.record("tick", job=job_id, pid=os.getpid())


def _sync_wrapper(function: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator written for sync functions: it returns what ``function`` returns, here the
    coroutine of an ``async def``."""

    @functools.wraps(function)
    def call(**payload: Any) -> Any:
        return function(**payload)

    del call.__wrapped__  # as a decorator without functools.wraps leaves it
    return call


@registry.job(name="awork")
async def awork(
    n: int = 0,
    seconds: float = 0.0,
    kill_on: Sequence[int] = (),
    hold_on: Sequence[int] = (),
    **_: Any,
) -> str:
    """``work`` as an ``async def``: sleep ``seconds`` on the child's loop, ticking; SIGKILL
    this process on an attempt in ``kill_on``; on one in ``hold_on``, block the loop once
    cancelled. Returns the pid, how many jobs its loop has run (this one included) and ``n``."""
    ledger, job_id, run = _begin()
    if run in kill_on:
        os.kill(os.getpid(), signal.SIGKILL)
    try:
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.1))
            ledger.record("tick", job=job_id, pid=os.getpid())
    except asyncio.CancelledError:
        ledger.record("note", what="cancelled", job=job_id, pid=os.getpid())
        if run in hold_on:
            time.sleep(60)
        raise
    ledger.record("end", job=job_id, pid=os.getpid())
    loop = asyncio.get_running_loop()
    runs = _loop_runs[loop] = _loop_runs.get(loop, 0) + 1
    return f"{os.getpid()}:{runs}:{n}"


registry.job(name="awork.wrapped")(_sync_wrapper(awork))


@registry.job(name="stubborn")
def stubborn(seconds: float = 60.0, **_: Any) -> None:
    """On its first attempt, ignore SIGTERM, spawn a grandchild, and hang."""
    ledger, job_id, run = _begin()
    if run == 1:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen(["sleep", str(seconds)])
        ledger.record("note", what="grandchild", job=job_id, pid=grandchild.pid, child=os.getpid())
        time.sleep(seconds)
    ledger.record("end", job=job_id, pid=os.getpid())


@registry.job(name="hog")
def hog(mb: int = 0, **_: Any) -> None:
    """Keep ``mb`` MiB alive in this process (touched, so it is resident)."""
    ledger, job_id, _run = _begin()
    _hoard.append(bytearray(os.urandom(1)) * (mb << 20))
    ledger.record("end", job=job_id, pid=os.getpid())


@registry.job(name="signal_parent")
def signal_parent(
    signals: Sequence[str] = ("SIGTERM",), seconds: float = 5.0, after: str = "", **_: Any
) -> None:
    """On this job's first run ever, wait until job ``after`` has started (at most 10 s), send
    ``signals`` to the pool's parent, then keep working for ``seconds``."""
    ledger, job_id, _run = _begin()
    if len(_starts(ledger, job_id)) == 1:
        give_up = time.monotonic() + 10
        while after and not _starts(ledger, after) and time.monotonic() < give_up:
            time.sleep(0.01)
        for name in signals:
            os.kill(os.getppid(), getattr(signal, name))
            time.sleep(0.05)
        time.sleep(seconds)
    ledger.record("end", job=job_id, pid=os.getpid())


def _starts(ledger: Ledger, job_id: str) -> list[dict[str, Any]]:
    return [e for e in ledger.events() if e["ev"] == "start" and e["job"] == job_id]


@registry.job(name="kill_parent")
def kill_parent(**_: Any) -> None:
    """A poison pill: SIGKILL this child's pool parent (the kernel then kills this child)."""
    _begin()
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(30)


class Scenario:
    """A ledger, a queue (memory on the system clock unless given), and pools run here."""

    def __init__(self, tmp_path: Path, seed: int, queue: QueuePort | None = None) -> None:
        print(f"fault scenario seed: {seed}")
        self.seed = seed
        self.ledger = Ledger(tmp_path / "ledger.jsonl")
        os.environ[LEDGER_ENV] = str(self.ledger.path)
        self.queue: QueuePort = queue or MemoryQueue(SystemClock())
        self.ids: list[str] = []

    def job(self, name: str, attempts: int = 3, **fields: Any) -> Job:
        """A job for one of this module's handlers, retried at once when it fails."""
        template = registry.get(name).template
        retry = RetryPolicy(max_attempts=attempts, backoff=Fixed(timedelta(0)))
        return Job(name, queue=template.queue, retry=retry, **fields)

    def produce(self, jobs: Sequence[Job]) -> None:
        """Enqueue each job, writing what the producer was told to the ledger."""
        for job in jobs:
            self.ledger.record("enqueue_try", job=job.id)
            self.queue.enqueue(job)
            self.ledger.record("enqueued", job=job.id)
            self.ids.append(job.id)

    def run(self, config: PoolConfig) -> int:
        """Run a pool until it stops; its exit code."""
        pool = Pool(self.queue, registry, config, clock=SystemClock())
        return pool.run()

    def check(self, expect: Expectations | None = None) -> Report:
        """The total-queue check over every job this scenario enqueued."""
        final = {job_id: self.queue.get(job_id) for job_id in self.ids}
        completed = self.queue.stats("default").completed
        report = check(self.ledger.events(), final, completed_total=completed, expect=expect)
        print(report.summary())
        return report

    def starts(self, job_id: str) -> list[dict[str, Any]]:
        """The ledger's start events of one job."""
        return _starts(self.ledger, job_id)
