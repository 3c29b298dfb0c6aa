"""A fault test that fails leaves no process running: its fixtures own the workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.faults.fails_on_purpose import PIDS_ENV
from tests.faults.redis_workers import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_a_failing_fault_test_leaves_no_worker_child_or_grandchild_running(
    tmp_path: Path, redis_url: str
) -> None:
    pids = tmp_path / "pids"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    # Its files, which a failed scenario keeps, go where this test's go.
    env |= {PIDS_ENV: str(pids), "FOUNDRY_TEST_REDIS_URL": redis_url, "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "pytest", "tests/faults/fails_on_purpose.py"]
    command += ["-p", "no:cacheprovider", "-q"]

    run = subprocess.run(
        command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )

    assert "1 failed" in run.stdout, run.stdout + run.stderr
    assert "failing on purpose" in run.stdout
    seen = [tuple(line.split()) for line in pids.read_text().splitlines()]
    assert len(seen) == 2 + 2 * 2 + 1  # the parents, their children, the stubborn grandchild
    # SIGKILLed by the teardown; the kernel may take a moment to finish them off.
    wait_for(lambda: not _still_running(seen), 10, "the killed processes to be gone")


def _still_running(seen: list[tuple[str, ...]]) -> list[str]:
    alive = []
    for pid, created in seen:
        try:
            process = psutil.Process(int(pid))
            if process.create_time() == float(created) and process.status() != "zombie":
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive
