"""``foundry work`` on the memory queue runs the app's schedules in its own pool (and does
not with ``--no-scheduler``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.schedule_apps import LEDGER, ticks_of, wait_for_runs
from tests.e2e.test_demo import ROOT

pytestmark = pytest.mark.slow


def work_until(ledger: Path, runs: int, *flags: str) -> tuple[int, str]:
    """Run a worker until it ran ``runs`` ticks, or for 3 s after its startup if ``runs`` is 0."""
    command = "from foundry.entrypoints.cli import main; main()"
    args = ["work", "--app", "tests.e2e.schedule_apps:registry", "--concurrency", "1", *flags]
    env = {**os.environ, "QUEUE_DRIVER": "memory", "FOUNDRY_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-c", command, *args],
        cwd=ROOT,
        env={**env, LEDGER: str(ledger)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    head = ""
    if runs:
        wait_for_runs(ledger, runs)
    else:
        head = process.stderr.readline().decode()  # its startup note: the CLI is up
        time.sleep(3)
    process.send_signal(signal.SIGTERM)
    errors = head + process.communicate(timeout=30)[1].decode()
    return process.returncode, errors


def test_a_memory_worker_fires_its_schedule_every_second_once(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ledger.touch()

    code, errors = work_until(ledger, 3)

    ticks = Counter(ticks_of(ledger.read_text().splitlines()))
    assert code == 0, errors
    assert len(ticks) >= 3, errors
    assert set(ticks.values()) == {1}
    assert sorted(ticks) == list(range(min(ticks), max(ticks) + 1))


def test_no_scheduler_fires_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ledger.touch()

    code, errors = work_until(ledger, 0, "--no-scheduler")

    assert code == 0, errors
    assert ledger.read_text() == ""


def test_a_burst_worker_fires_no_schedule_and_exits_once_drained(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ledger.touch()
    command = "from foundry.entrypoints.cli import main; main()"
    args = ["work", "--app", "tests.e2e.schedule_apps:registry", "--concurrency", "1", "--burst"]
    env = {
        **os.environ,
        "QUEUE_DRIVER": "memory",
        "FOUNDRY_LOG_LEVEL": "WARNING",
        LEDGER: str(ledger),
    }

    # A scheduler would feed it a job every second: the drain would never end.
    done = subprocess.run(
        [sys.executable, "-c", command, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=90,
        check=False,
    )

    assert done.returncode == 0, done.stderr.decode()
    assert ledger.read_text() == ""
