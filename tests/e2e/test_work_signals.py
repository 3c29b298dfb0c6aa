"""``foundry work`` and the signals a user's terminal or service manager sends it: each is a warm
stop (the running job finishes, the worker exits 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from foundry.adapters.redis.queue import RedisQueue
from foundry.domain import JobState
from tests.backends import unique_prefix
from tests.e2e.apps import LEDGER, QUEUE, registry
from tests.e2e.test_demo import ROOT

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _wait_for_line(ledger: Path, line: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ledger.exists() and line in ledger.read_text().splitlines():
            return
        time.sleep(0.05)
    raise AssertionError(f"no {line!r} in the ledger within {timeout} s")


def _start_worker(redis_url: str, prefix: str, ledger: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, LEDGER: str(ledger)}
    command = "from foundry.entrypoints.cli import main; main()"
    args = ["work", "--app", "tests.e2e.apps:registry", "--queues", QUEUE, "--concurrency", "1"]
    return subprocess.Popen(
        [sys.executable, "-c", command, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("signum", "everyone"),
    [
        pytest.param(signal.SIGHUP, False, id="a-hangup"),
        pytest.param(signal.SIGHUP, True, id="a-hangup-to-every-process-of-the-unit"),
        pytest.param(signal.SIGTERM, True, id="systemd-stopping-every-process-of-the-unit"),
    ],
)
def test_a_signal_that_stops_a_worker_warm_lets_its_running_job_finish(
    redis_url: str, tmp_path: Path, signum: int, everyone: bool
) -> None:
    prefix, ledger = unique_prefix("hup"), tmp_path / "ledger"
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix)
    job = registry.make_job("e2e.nap", {"seconds": 1.5})
    queue.enqueue(job)
    worker = _start_worker(redis_url, prefix, ledger)
    _wait_for_line(ledger, "nap started")

    for pid in [worker.pid, *(_descendants(worker.pid) if everyone else [])]:
        os.kill(pid, signum)
    errors = worker.communicate(timeout=30)[1].decode()

    record = queue.get(job.id)
    assert record is not None
    assert (worker.returncode, record.state, record.result) == (0, JobState.COMPLETED, "rested"), (
        errors
    )
    assert record.attempts == 1


@pytest.mark.timeout(60)
def test_a_quit_signal_stops_a_worker_cold_giving_its_running_job_back_unspent(
    redis_url: str, tmp_path: Path
) -> None:
    prefix, ledger = unique_prefix("quit"), tmp_path / "ledger"
    queue = RedisQueue(redis.Redis.from_url(redis_url), prefix=prefix)
    job = registry.make_job("e2e.nap", {"seconds": 20})
    queue.enqueue(job)
    worker = _start_worker(redis_url, prefix, ledger)
    _wait_for_line(ledger, "nap started")

    worker.send_signal(signal.SIGQUIT)  # Ctrl-\ in its terminal
    errors = worker.communicate(timeout=30)[1].decode()

    record = queue.get(job.id)
    assert record is not None
    assert (worker.returncode, record.state, record.attempts) == (130, JobState.READY, 0), errors
