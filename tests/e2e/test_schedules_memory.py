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

from tests.e2e.schedule_apps import LEDGER, ticks_of, wait_for_a_run
from tests.e2e.test_demo import ROOT

pytestmark = pytest.mark.slow


def work_for(seconds: float, ledger: Path, *flags: str, started: bool = True) -> tuple[int, str]:
    """Run a worker for ``seconds`` from its first tick (``started``), else from its startup."""
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
    if started:
        wait_for_a_run(ledger)
    else:
        head = process.stderr.readline().decode()  # its startup note: the CLI is up
    time.sleep(seconds)
    process.send_signal(signal.SIGTERM)
    errors = head + process.communicate(timeout=30)[1].decode()
    return process.returncode, errors


def test_a_memory_worker_fires_its_schedule_every_second_once(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ledger.touch()

    code, errors = work_for(2.5, ledger)

    ticks = Counter(ticks_of(ledger.read_text().splitlines()))
    assert code == 0, errors
    assert len(ticks) >= 2, errors
    assert set(ticks.values()) == {1}
    assert sorted(ticks) == list(range(min(ticks), max(ticks) + 1))


def test_no_scheduler_fires_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ledger.touch()

    code, errors = work_for(3.0, ledger, "--no-scheduler", started=False)

    assert code == 0, errors
    assert ledger.read_text() == ""
