"""Real `foundry work` processes, a recording producer and the final check, for one scenario.

A ``Rig`` owns one scenario's world: its redis-server (never the machine's), a unique queue
prefix, the ledger, the worker processes and their log files. Workers are started exactly as
a user would start them (``foundry work --app tests.faults.app:registry``)
with ``QUEUE_DRIVER=redis``, ``REDIS_URL`` and ``QUEUE_PREFIX`` in their environment.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil

from foundry.domain import Job, QueueUnavailable, new_job_id
from foundry.entrypoints.container import Container, build_container, close_resources
from foundry.entrypoints.settings import Settings
from foundry.ports import QueuePort
from foundry.ports.queue_types import Duplicate, JobRecord
from tests.faults.checker import Expectations, Report, check, given_up
from tests.faults.ledger import LEDGER_ENV, Ledger
from tests.process_support import kill_tree, spawn

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.faults.app:registry"
#: The venv's `foundry` script, exactly what a user runs.
FOUNDRY = str(Path(sys.executable).with_name("foundry"))
JOB = "faults.work"


class Worker:
    """One `foundry work` parent process (and, through psutil, its children)."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log_path = log
        self._log = log.open("ab")
        self.process = spawn(
            args, env=dict(env), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        """The parent's pid."""
        return self.process.pid

    def children(self) -> list[psutil.Process]:
        """The pool's children right now."""
        try:
            return psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []

    def pause(self) -> None:
        """SIGSTOP the parent only: its children keep running, its leases stop being renewed."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        os.kill(self.pid, signal.SIGCONT)

    def kill_child(self, rng: random.Random) -> int | None:
        """SIGKILL one child at random; returns its pid (``None`` if there was none)."""
        children = self.children()
        if not children:
            return None
        victim = rng.choice(children)
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            return None
        return victim.pid

    def rss(self) -> int:
        """The parent's resident set size in bytes."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (warm stop) and wait; SIGKILL if it does not exit in ``timeout``."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_tree(self.process)
        self._log.close()
        return int(self.process.returncode)

    def log(self) -> str:
        """Everything the worker has logged so far."""
        return self.log_path.read_text(errors="replace")

    def count(self, text: str) -> int:
        """How many log lines contain ``text``."""
        return sum(text in line for line in self.log().splitlines())


class Rig:
    """One scenario: Redis URL, prefix, ledger, workers, producer, drain and check."""

    def __init__(self, redis_url: str, *, seed: int, queue: str = "faults"):
        # Our own directory, not pytest's tmp_path: concurrent pytest runs rotate those away.
        self.dir = Path(tempfile.mkdtemp(prefix="foundry-fault-"))
        self.redis_url = redis_url
        self.direct_url = redis_url
        """Redis itself, when ``redis_url`` goes through a fault proxy."""
        self.seed = seed
        self.rng = random.Random(seed)
        self.queue_name = queue
        self.prefix = f"ft{secrets.token_hex(4)}"
        self.ledger = Ledger(self.dir / "ledger.jsonl")
        self.workers: list[Worker] = []
        self.job_ids: list[str] = []
        self._containers: list[Container] = []  # the producer-side queues', closed at the end
        print(f"\nfault scenario seed={seed} prefix={self.prefix} ledger={self.ledger.path}")

    def env(self, url: str | None = None, **extra: str) -> dict[str, str]:
        """The environment of a worker (or producer) reaching Redis at ``url``."""
        return {
            **os.environ,
            "QUEUE_DRIVER": "redis",
            "REDIS_URL": url or self.redis_url,
            "QUEUE_PREFIX": self.prefix,
            "PYTHONPATH": str(ROOT),
            LEDGER_ENV: str(self.ledger.path),
            **extra,
        }

    def start_worker(
        self, *options: str, url: str | None = None, concurrency: int = 2, lease_s: float = 5
    ) -> Worker:
        """Start one `foundry work` on this scenario's queue (``QUEUE_TIMEOUT`` is its lease)."""
        name = f"worker{len(self.workers) + 1}"
        args = [FOUNDRY, "work", "--app", APP]
        args += ["--queues", self.queue_name, "--concurrency", str(concurrency), *options]
        env = self.env(url, QUEUE_TIMEOUT=f"{lease_s:g}")
        worker = Worker(name, args, env, self.dir / f"{name}.log")
        self.workers.append(worker)
        return worker

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until every worker passed its startup self-check and started its pool.

        Faults come after this: a worker that cannot reach Redis at startup exits 3 by design.
        """
        self.wait_until(
            "the workers to start",
            lambda: all(worker.count("starting: queues") for worker in self.workers),
            timeout,
        )

    def queue(self, url: str | None = None) -> QueuePort:
        """A producer-side queue, built by the product's own container."""
        settings = Settings.from_env(self.env(url))
        container = build_container(settings)
        self._containers.append(container)
        queue: QueuePort = container.queue()
        return queue

    def job(self, **payload: Any) -> Job:
        """A fault job with a fresh id (the id travels in the payload, for the ledger)."""
        job_id = new_job_id()
        return Job(id=job_id, name=JOB, payload={"id": job_id, **payload}, queue=self.queue_name)

    def enqueue(self, queue: QueuePort, jobs: Iterable[Job], *, patience: float = 30) -> None:
        """Enqueue each job, re-sending the same id while Redis is unreachable, and record it."""
        for job in jobs:
            self.job_ids.append(job.id)
            self.ledger.record("enqueue_try", job=job.id)
            self._enqueue_one(queue, job, patience)

    def _enqueue_one(self, queue: QueuePort, job: Job, patience: float) -> None:
        give_up = time.monotonic() + patience
        while True:
            try:
                outcome = queue.enqueue(job)
            except QueueUnavailable as error:
                if time.monotonic() > give_up:
                    self.ledger.record("enqueue_error", job=job.id, error=str(error))
                    return
                time.sleep(0.05)
                continue
            if isinstance(outcome, Duplicate):
                self.ledger.record("duplicate", job=job.id, existing=outcome.existing_id)
            else:
                self.ledger.record("enqueued", job=job.id)
            return

    def note(self, text: str, **fields: Any) -> None:
        """Record a fault in the ledger (and print it), so a failure can be read in order."""
        print(f"  fault: {text}")
        self.ledger.record("note", text=text, **fields)

    def started_under(self, worker: Worker) -> set[str]:
        """Jobs whose handler started in one of ``worker``'s children."""
        events = self.ledger.events()
        return {e["job"] for e in events if e["ev"] == "start" and e["ppid"] == worker.pid}

    def ended(self) -> int:
        """How many handler runs have returned so far."""
        return sum(event["ev"] == "end" for event in self.ledger.events())

    def wait_until(self, what: str, ready: Callable[[], bool], timeout: float) -> None:
        """Poll ``ready`` every 50 ms; fail naming ``what`` after ``timeout`` seconds."""
        give_up = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > give_up:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def drained(self, queue: QueuePort) -> bool:
        """No job of this scenario's queue is ready, delayed or running."""
        try:
            stats = queue.stats(self.queue_name)
        except QueueUnavailable:
            return False
        return stats.ready + stats.delayed + stats.active == 0

    def wait_drained(self, queue: QueuePort, timeout: float = 90) -> None:
        """Wait for the drain; fail at once if a worker died, or after ``timeout`` seconds."""

        def done() -> bool:
            for worker in self.workers:
                if worker.process.poll() is not None:
                    raise AssertionError(
                        f"{worker.name} exited with {worker.process.returncode} before the "
                        f"drain; see {worker.log_path}"
                    )
            return self.drained(queue)

        self.wait_until("the queue to drain", done, timeout)

    def report(self, queue: QueuePort, expect: Expectations | None = None) -> Report:
        """Check the ledger against the queue now and print the summary (no assertion)."""
        events = self.ledger.events()
        ids = {e["job"] for e in events if e["ev"] in ("enqueue_try", "start")}
        final: dict[str, JobRecord | None] = {
            job_id: queue.get(job_id, self.queue_name) for job_id in sorted(ids)
        }
        stats = queue.stats(self.queue_name)
        report = check(events, final, completed_total=stats.completed, expect=expect)
        print(f"fault check (seed={self.seed}): {report.summary()}")
        print(f"  stats: {stats}")
        return report

    def stop_workers(self) -> dict[str, int]:
        """Warm-stop every worker (SIGCONT first, in case one is stopped); their exit codes."""
        return {worker.name: worker.stop() for worker in self.workers}

    def finish(self, queue: QueuePort, expect: Expectations | None = None) -> Report:
        """Stop the workers, check, print; fail (files kept) on a problem or a bad exit code."""
        codes = self.stop_workers()
        report = self.report(queue, expect)
        for name, code in codes.items():
            if code != 0:
                report.problems.append(f"{name} exited with {code} after a warm stop")
        if not report.ok:
            logs = ", ".join(str(worker.log_path) for worker in self.workers)
            raise AssertionError(
                f"fault check failed (seed={self.seed}); ledger kept at {self.ledger.path}; "
                f"worker logs: {logs}\n{report.summary()}"
            )
        return report

    def fenced(self) -> Counter[str]:
        """Job id -> how often the workers said they gave its lease up (fenced, or lost)."""
        return given_up(worker.log() for worker in self.workers)

    def close(self, *, keep: bool) -> None:
        """Stop every worker still running, then kill whatever they left; remove the ledger
        and logs unless ``keep``. The producer-side queues' connections are closed here: a
        pool left to the garbage collector may be collected on its own worker thread, which
        cannot join itself."""
        for container in self._containers:
            close_resources(container)
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.stop(timeout=10)
            kill_tree(worker.process)
        if not keep and not os.environ.get("FOUNDRY_KEEP_LEDGER"):
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"fault scenario files kept in {self.dir} (ledger.jsonl, worker*.log)")
