"""Whole workers (``foundry work`` processes) on a Redis queue, for the multi-worker faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import redis

from foundry.adapters.redis.keys import QueueKeys
from tests.faults.checker import KilledWorker, given_up
from tests.process_support import kill_tree, spawn

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.faults.pool_scenario:registry"


class Workers:
    """Starts ``foundry work`` processes against one Redis queue prefix; ``close`` kills
    whatever they left running (the ``make_workers`` fixture calls it, whatever the outcome)."""

    def __init__(self, tmp_path: Path, redis_url: str, prefix: str, lease_s: int) -> None:
        self._logs = tmp_path
        self._env = {
            **os.environ,
            "QUEUE_DRIVER": "redis",
            "REDIS_URL": redis_url,
            "QUEUE_PREFIX": prefix,
            "QUEUE_TIMEOUT": str(lease_s),
            "PYTHONPATH": str(ROOT),
        }
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *options: str, concurrency: int = 2) -> subprocess.Popen[bytes]:
        """A new worker process with ``options`` (its output goes to a log file beside the
        ledger)."""
        log = (self._logs / f"worker-{len(self.started)}.log").open("wb")
        command = [
            sys.executable,
            "-c",
            "from foundry.entrypoints.cli import main; main()",
            "work",
            "--app",
            APP,
            "--queues",
            "default",
            "--concurrency",
            str(concurrency),
            *options,
        ]
        worker = spawn(command, env=self._env, cwd=ROOT, stdout=log, stderr=log)
        log.close()  # the worker has its own copy
        self.started.append(worker)
        return worker

    def stop_all(self) -> list[int | None]:
        """SIGTERM every live worker and wait (bounded); their exit codes."""
        for worker in self.started:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        codes = []
        for worker in self.started:
            try:
                codes.append(worker.wait(timeout=30))
            except subprocess.TimeoutExpired:
                kill_tree(worker)
                codes.append(None)
        return codes

    def close(self) -> None:
        """Kill every worker and all it started, stopped or not."""
        for worker in self.started:
            kill_tree(worker)

    def log(self, index: int) -> str:
        """What worker ``index`` printed."""
        return (self._logs / f"worker-{index}.log").read_text(errors="replace")

    def fenced(self) -> Counter[str]:
        """Job id -> how often the workers said they gave its lease up (fenced, or lost)."""
        return given_up(self.log(index) for index in range(len(self.started)))


#: The ``make_workers`` fixture: ``Workers`` for a Redis URL, queue prefix and lease (s).
MakeWorkers = Callable[[str, str, int], Workers]


def leases_of_the_dead(redis_url: str, prefix: str, pid: int) -> KilledWorker:
    """The leases on queue ``default`` (all held by worker ``pid``, reaped already) and which
    of them hold their job ahead, unstarted: Redis answers this later call after applying any
    command the worker sent before it died."""
    keys = QueueKeys.of(prefix, "default")
    with redis.Redis.from_url(redis_url) as client:
        held = {job_id.decode() for job_id in client.zrange(keys.named("leases"), 0, -1)}
        # An "ahead" mark "<lapses> <lease token>" holds its job unstarted; "<lapses>" started.
        marks = client.hgetall(keys.base + "ahead")
    unstarted = {job_id.decode() for job_id, mark in marks.items() if b" " in mark} & held
    return KilledWorker(pid, frozenset(held - unstarted), frozenset(unstarted))


def lease_deadlines(redis_url: str, prefix: str, job_ids: Iterable[str]) -> dict[str, float]:
    """The deadlines (wall-clock seconds) of the leases the queue ``default`` holds for
    ``job_ids``: none of those jobs is reaped, so none runs again, before its deadline."""
    leases = QueueKeys.of(prefix, "default").named("leases")
    with redis.Redis.from_url(redis_url) as client:
        scores = {job_id: client.zscore(leases, job_id) for job_id in job_ids}
    return {job_id: score / 1000 for job_id, score in scores.items() if score is not None}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 20 ms; fail naming ``what`` if it still does not hold when
    first asked after ``timeout`` seconds."""
    give_up = time.monotonic() + timeout
    while True:
        # The clock is read before the condition: a test process the machine starved past
        # the deadline between a poll and its clock reading still polls once more.
        late = time.monotonic() > give_up
        if condition():
            return
        if late:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
